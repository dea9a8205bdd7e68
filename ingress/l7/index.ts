// The L7 (HTTP/1.1) proxy of the ingress: what the ingress process uses.
export { L7Proxy, type L7ProxyOptions } from './proxy';
export { DEFAULT_LIMITS, type L7Limits, type L7ListenerOptions, type L7Route } from './types';

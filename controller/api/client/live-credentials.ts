// Channel credentials that can be replaced while clients use them: a client
// certificate renewed at half its lifetime (renewal.ts) reaches every client
// built from the credentials, which then moves its calls and watches to a
// channel with the new certificate (client.ts) without its owner knowing.
// The link is kept beside the credentials object, so code that builds a
// client from `channelCredentials(creds)` needs no change to follow renewals.
import type * as grpc from '@grpc/grpc-js';

export type CredentialFeed = {
  /** Called with each replacement; returns the unsubscribe function. */
  subscribe(fn: (next: grpc.ChannelCredentials) => void): () => void;
};

const feeds = new WeakMap<grpc.ChannelCredentials, CredentialFeed>();

export function linkCredentials(creds: grpc.ChannelCredentials, feed: CredentialFeed): grpc.ChannelCredentials {
  feeds.set(creds, feed);
  return creds;
}

/** The feed of replacements for these credentials, if they were made renewable. */
export function credentialFeed(creds: grpc.ChannelCredentials): CredentialFeed | undefined {
  return feeds.get(creds);
}

/** The current value of something that renews itself, and its replacements. */
export type LiveSource<T> = { current(): T; subscribe(fn: (next: T) => void): () => void };

const sources = new WeakMap<object, LiveSource<unknown>>();

/** Makes `initial` stand for a value that renews: whoever is handed `initial` can find the newest. */
export function setLive<T extends object>(initial: T, source: LiveSource<T>): void {
  sources.set(initial, source as LiveSource<unknown>);
}

export function liveOf<T extends object>(value: T): LiveSource<T> | undefined {
  return sources.get(value) as LiveSource<T> | undefined;
}

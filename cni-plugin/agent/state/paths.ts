// Where the agent keeps its state by default: credentials, keys and its
// database. Its own module so that reading the agent's flags loads nothing else.
export const DEFAULT_STATE_DIR = '/var/lib/weft/agent';

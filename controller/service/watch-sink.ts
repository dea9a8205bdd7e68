// One watch stream's outgoing side: messages the hub fans out are written
// while grpc-js accepts them and queued while it does not (write() returned
// false; 'drain' resumes). The queue holds references to messages every
// stream shares, so a waiting stream costs a pointer per message; and as
// every queue is a suffix of the same sequence of messages, all waiting
// streams together hold about what the most-behind one holds.
//
// The bound: a stream whose queue passes `limit` (messages, or their size
// as JSON) is ended with RESOURCE_EXHAUSTED naming the revision to resume
// from, which the agent's reconnect does. Besides the queue, grpc-js's
// object-mode Writable buffers 16 messages and HTTP/2 flow control lets a
// window's worth of bytes through to the socket. A burst (one store commit
// of many revisions) is queued in one go before any of it can drain, so the
// limit must sit well above the largest burst a healthy client sees.
import * as grpc from '@grpc/grpc-js';

export type Sink<Msg> = {
  /** Aborts when the client goes, or the sink was ended or failed. */
  readonly signal: AbortSignal;
  /**
   * Queues or writes `msg` unless its revision is not after the last one
   * handed to this stream (written or queued).
   * `backlog`: part of a resume's replay, which may exceed the limit (the
   * messages are held by the hub's log or the resume anyway) until the
   * queue has drained once.
   */
  send(msg: Msg, bytes: number, backlog?: boolean): void;
  /** Nothing up to `revision` is sent: the client has it. */
  skipThrough(revision: number): void;
  /** Ends the stream cleanly (the store closed: the client reconnects elsewhere). */
  end(): void;
  /** Ends the stream with the status for `err`. */
  fail(err: unknown): void;
  /**
   * Resolves when everything handed to this stream so far has left
   * grpc-js for the socket (or the stream is gone): how the hub knows a
   * snapshot's bytes are no longer held for this client.
   */
  flushed(): Promise<void>;
  /** Whether the client asked for progress messages (a revision with no change for it). */
  readonly progress: boolean;
};

export type QueueLimit = { messages: number; bytes: number };

export type SinkOptions = {
  /** Most live messages, and their most bytes (as JSON), queued behind grpc-js before the stream is ended. */
  limit: QueueLimit;
  /** How an error passed to fail() becomes the stream's status. */
  toStatus: (err: unknown) => Partial<grpc.StatusObject>;
  /** Called once when the stream is ended for falling behind (for logs). */
  onOverflow?: (resumeFrom: number) => void;
  /** The client asked for progress messages. */
  progress?: boolean;
};

export function createSink<Msg extends { revision: number }>(call: grpc.ServerWritableStream<unknown, Msg>, opts: SinkOptions): Sink<Msg> {
  const gone = new AbortController();
  let queue: Array<{ msg: Msg; bytes: number }> = [];
  let queuedBytes = 0;
  let head = 0;
  let blocked = false;
  let after = 0;
  /** Replayed messages (and bytes) still allowed in the queue beyond the limit. */
  let credit = { messages: 0, bytes: 0 };
  /** The revision of the last message grpc-js took: the client gets it before any status we send later. */
  let written = 0;
  /** Messages accepted (written or queued) and messages whose bytes grpc-js has handed to the socket; both only grow, in order. */
  let accepted = 0;
  let done = 0;
  let flushWaiters: Array<{ upTo: number; resolve: () => void }> = [];
  const settle = (): void => {
    if (flushWaiters.length === 0) return;
    const now = gone.signal.aborted ? Infinity : done;
    const still = flushWaiters.filter((w) => w.upTo > now);
    for (const w of flushWaiters) if (w.upTo <= now) w.resolve();
    flushWaiters = still;
  };
  const wrote = (): void => {
    done++;
    settle();
  };

  const write = (msg: Msg): boolean => {
    written = msg.revision;
    return call.write(msg, wrote);
  };

  const flush = (): void => {
    blocked = false;
    while (head < queue.length && !gone.signal.aborted) {
      const { msg, bytes } = queue[head++];
      queuedBytes -= bytes;
      if (!write(msg)) {
        blocked = true;
        break;
      }
    }
    if (head === queue.length) {
      queue = [];
      head = 0;
      queuedBytes = 0;
      credit = { messages: 0, bytes: 0 };
    }
  };

  const close = (): void => {
    if (gone.signal.aborted) return;
    gone.abort();
    queue = [];
    head = 0;
    queuedBytes = 0;
    call.off('drain', flush);
    call.off('cancelled', close);
    call.off('close', close);
    settle();
  };
  call.on('drain', flush);
  call.on('cancelled', close);
  call.on('close', close);

  return {
    signal: gone.signal,
    progress: opts.progress ?? false,
    flushed() {
      return new Promise((resolve) => {
        flushWaiters.push({ upTo: accepted, resolve });
        settle();
      });
    },
    send(msg, bytes, backlog = false) {
      if (gone.signal.aborted || msg.revision <= after) return;
      after = msg.revision;
      accepted++;
      if (!blocked) {
        blocked = !write(msg);
        return;
      }
      queue.push({ msg, bytes });
      queuedBytes += bytes;
      if (backlog) credit = { messages: credit.messages + 1, bytes: credit.bytes + bytes };
      const over = queue.length - head > opts.limit.messages + credit.messages || queuedBytes > opts.limit.bytes + credit.bytes;
      if (!over) return;
      const resumeFrom = written;
      close();
      opts.onOverflow?.(resumeFrom);
      call.emit('error', {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `watch stream fell behind: more than ${opts.limit.messages} events or ${opts.limit.bytes} bytes waiting for the client to read; resume from revision ${resumeFrom}`,
      });
    },
    skipThrough(revision) {
      after = Math.max(after, revision);
    },
    end() {
      if (gone.signal.aborted) return;
      close();
      call.end();
    },
    fail(err) {
      if (gone.signal.aborted) return;
      close();
      call.emit('error', opts.toStatus(err));
    },
  };
}

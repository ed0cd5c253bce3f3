// Live updates over /graphql/ws (graphql-transport-ws) with the vendored graphql-ws client:
// it retries a lost socket with randomised backoff; the page shows "Reconnecting…" meanwhile
// and refetches what it shows once the socket is back.
import { createClient } from './vendor/graphql-ws/client.js';

/**
 * Opens the socket for `token`. `onState('connected' | 'reconnecting')`; `onReconnected()`
 * after a socket that was lost is back (the page refetches, since events may have been missed).
 */
export function connect(token, { onState, onReconnected, onRefused }) {
  let wasConnected = false;
  const client = createClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql/ws`,
    connectionParams: { authorization: `Bearer ${token}` },
    lazy: false,
    keepAlive: 15_000,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    onNonLazyError: () => {},
    on: {
      connected: () => {
        onState('connected');
        if (wasConnected) onReconnected();
        wasConnected = true;
      },
      closed: (event) => {
        // 4403: the token no longer works (signed out, disabled, deleted, password changed).
        if (event?.code === 4403) onRefused?.();
        onState('reconnecting');
      },
    },
  });
  return {
    /** Subscribes; `next(data)` per event. A subscription that ends with an error (e.g.
     *  SUBSCRIPTION_BEHIND) calls `onError` and is started again. Returns an unsubscribe. */
    subscribe(query, variables, next, onError) {
      let stop = () => {};
      let stopped = false;
      const start = () => {
        stop = client.subscribe({ query, variables }, {
          next: ({ data }) => data && next(data),
          error: (error) => {
            onError?.(error);
            const codes = (Array.isArray(error) ? error : [error]).map((e) => e?.extensions?.code);
            // FORBIDDEN will not get better by asking again; anything else (SUBSCRIPTION_BEHIND)
            // is asked again after a moment, and `onError` refetches what was missed.
            if (!stopped && !codes.includes('FORBIDDEN')) setTimeout(start, 1000);
          },
          complete: () => {},
        });
      };
      start();
      return () => {
        stopped = true;
        stop();
      };
    },
    close: () => client.dispose(),
  };
}

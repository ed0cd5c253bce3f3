// Automatic persisted queries with Apollo's own link: queries go out as a hash (over GET, or
// over POST when the link is told so), the first time answered PersistedQueryNotFound and sent
// again with the query; after that the hash alone is enough, for any client. Mutations go by
// POST.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';

import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client/core/index.js';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries/index.js';

import { login, startServer } from '../support/server.mjs';

let server;
let token;

before(async () => {
  server = await startServer();
  token = await login(server.http);
});

after(async () => {
  await server?.stop();
});

/** An Apollo client with the persisted-query link, and the requests it sent; `useGET: false`
 *  sends hashed queries by POST. */
function client({ useGET = true } = {}) {
  const sent = [];
  const recordingFetch = async (url, init) => {
    const response = await fetch(url, init);
    const request = init.method === 'GET'
      ? Object.fromEntries(new URL(url).searchParams)
      : JSON.parse(init.body);
    const answer = await response.clone().json();
    sent.push({ method: init.method, hasQuery: Boolean(request.query), status: response.status, answer });
    return response;
  };
  const persisted = createPersistedQueryLink({
    sha256: (text) => createHash('sha256').update(text).digest('hex'),
    useGETForHashedQueries: useGET,
  });
  const http = new HttpLink({ uri: server.http, headers: { authorization: `Bearer ${token}` }, fetch: recordingFetch });
  return { apollo: new ApolloClient({ link: persisted.concat(http), cache: new InMemoryCache() }), sent };
}

const ME = gql`query PersistedMe { viewer { username role } }`;

test('Apollo\'s persisted-query link registers a query once, then reads it by hash over GET', async () => {
  const first = client();
  const answer = await first.apollo.query({ query: ME });
  assert.deepEqual(answer.data.viewer, { __typename: 'Agent', username: 'admin', role: 'ADMIN' });
  // The hash alone over GET, unknown; then the query with its hash.
  assert.equal(first.sent.length, 2);
  assert.deepEqual([first.sent[0].method, first.sent[0].hasQuery], ['GET', false]);
  assert.equal(first.sent[0].answer.errors[0].extensions.code, 'PERSISTED_QUERY_NOT_FOUND');
  assert.equal(first.sent[1].hasQuery, true);

  // Another client (its own cache): one GET with the hash only.
  const second = client();
  const again = await second.apollo.query({ query: ME });
  assert.equal(again.data.viewer.username, 'admin');
  assert.deepEqual(second.sent.map(({ method, hasQuery, status }) => [method, hasQuery, status]), [['GET', false, 200]]);
});

test('over POST too: the hash alone is unknown, then the query registers it, then the hash is enough', async () => {
  // A query of its own, so no earlier test has registered its hash.
  const query = gql`query PersistedOverPost { viewer { displayName } }`;
  const first = client({ useGET: false });
  const answer = await first.apollo.query({ query });
  assert.equal(answer.data.viewer.displayName, 'Administrator');
  assert.deepEqual(first.sent.map(({ method, hasQuery }) => [method, hasQuery]), [['POST', false], ['POST', true]]);
  assert.equal(first.sent[0].answer.errors[0].extensions.code, 'PERSISTED_QUERY_NOT_FOUND');
  assert.equal(first.sent[0].answer.data, undefined);
  assert.equal(first.sent[1].status, 200);
  assert.equal(first.sent[1].answer.errors, undefined);

  const second = client({ useGET: false });
  assert.equal((await second.apollo.query({ query })).data.viewer.displayName, 'Administrator');
  assert.deepEqual(second.sent.map(({ method, hasQuery, status }) => [method, hasQuery, status]), [['POST', false, 200]]);
});

test('a mutation through the link goes by POST, never GET', async () => {
  const { apollo, sent } = client();
  const result = await apollo.mutate({
    mutation: gql`mutation PersistedPresence { reportPresence(status: ONLINE) { presence } }`,
  });
  assert.ok(result.data.reportPresence, JSON.stringify(result));
  assert.ok(sent.length >= 1);
  assert.ok(sent.every(({ method }) => method === 'POST'), JSON.stringify(sent));
  assert.ok(sent.every(({ status }) => status === 200), JSON.stringify(sent));
});

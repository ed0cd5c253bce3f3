// Real clients against a real agentdesk: what a frontend team uses on day one.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client/core/index.js';
import { generate } from '@graphql-codegen/cli';
import { buildSchema, parse, validate } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { graphql, login, startServer } from '../support/server.mjs';

const root = new URL('../../', import.meta.url);
const schemaText = readFileSync(new URL('schema.graphql', root), 'utf8');
let server;
let token;

before(async () => {
  server = await startServer();
  token = await login(server.http);
});

after(async () => {
  await server?.stop();
});

test('graphql-js validates schema.graphql and every example operation of the README', () => {
  const schema = buildSchema(schemaText);
  const readme = readFileSync(new URL('README.md', root), 'utf8');
  const examples = [...readme.matchAll(/```graphql\n([\s\S]*?)```/g)].map((match) => match[1]);
  assert.ok(examples.length >= 8, `found ${examples.length} examples`);
  for (const example of examples) {
    const errors = validate(schema, parse(example));
    assert.deepEqual(errors.map((e) => e.message), [], example);
  }
});

test('Apollo Client runs the directory queries and a mutation, and its cache follows', async () => {
  const client = new ApolloClient({
    link: new HttpLink({ uri: server.http, headers: { authorization: `Bearer ${token}` } }),
    cache: new InMemoryCache(),
  });
  const AGENTS = gql`query Agents { agents(first: 50) { totalCount nodes { id displayName username enabled } } }`;
  const created = await client.mutate({
    mutation: gql`mutation Create($input: CreateAgentInput!) {
      createAgent(input: $input) { agent { id displayName } userErrors { field code } } }`,
    variables: { input: { displayName: 'Apollo Agent', username: 'apollo', password: 'secret-1' } },
  });
  assert.deepEqual(created.data.createAgent.userErrors, []);
  const id = created.data.createAgent.agent.id;
  const listed = await client.query({ query: AGENTS });
  assert.equal(listed.data.agents.totalCount, 2);
  await client.mutate({
    mutation: gql`mutation Rename($input: UpdateAgentInput!) {
      updateAgent(input: $input) { agent { id displayName } userErrors { code } } }`,
    variables: { input: { id, displayName: 'Apollo Renamed' } },
  });
  // Normalised by id: the cached list shows the new name without a refetch.
  const cached = client.readQuery({ query: AGENTS });
  assert.equal(cached.agents.nodes.find((agent) => agent.id === id).displayName, 'Apollo Renamed');
});

test('graphql-ws subscribes to presenceChanged and receives a change', async () => {
  const client = createClient({
    url: server.ws,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
  });
  const events = [];
  let failure;
  client.subscribe(
    { query: 'subscription { presenceChanged { status previousStatus agent { username } } }' },
    { next: ({ data }) => events.push(data.presenceChanged), error: (e) => { failure = e; }, complete() {} },
  );
  const report = (status) =>
    graphql(server.http, `mutation { reportPresence(status: ${status}) { presence } }`, {}, token);
  try {
    // Changes before the subscription is live are not replayed: go online (and back) until
    // one is heard, within a bound.
    for (let attempt = 0; attempt < 20 && !events.some((e) => e.status === 'ONLINE') && !failure; attempt++) {
      await report('ONLINE');
      await new Promise((r) => setTimeout(r, 250));
      if (!events.some((e) => e.status === 'ONLINE')) await report('OFFLINE');
    }
    assert.equal(failure, undefined);
    const online = events.find((e) => e.status === 'ONLINE');
    assert.deepEqual(online, { status: 'ONLINE', previousStatus: 'OFFLINE', agent: { username: 'admin' } });
  } finally {
    await client.dispose();
  }
});

test('graphql-codegen generates TypeScript types from schema.graphql', async () => {
  const output = await generate({
    schema: new URL('schema.graphql', root).pathname,
    generates: { 'types.ts': { plugins: ['typescript'] } },
    silent: true,
  }, false);
  const types = output[0].content;
  assert.match(types, /export type Agent = /);
  assert.match(types, /export type PresenceEvent = /);
});

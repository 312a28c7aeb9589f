// The official TypeScript SDK over streamable HTTP (`StreamableHTTPClientTransport`, with the
// agent's credential as a bearer header, as a host configured with `"type": "http"` connects)
// against one `mcp-bridge serve --http` process: two agents create a conversation, send, and
// receive exactly once, `Client.callTool` validating every structured result against the tool's
// outputSchema; a client without a credential gets 401.
//
// The database is a SQLite file, or, when MCP_BRIDGE_TEST_PG is set (scripts/with-postgres), a
// PostgreSQL database of its own, created with `psql` and dropped after the test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { openSync, closeSync, readFileSync, readdirSync, existsSync as fileExists } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { BIN, tempBridge, serverEnv, ok, sleep } from './lib.mjs';

const PG_ADMIN = process.env.MCP_BRIDGE_TEST_PG?.trim() || null;
// The fixed server key every PostgreSQL process of a test shares (64 hex characters).
const PG_KEY = '5e'.repeat(32);

/** psql from PATH, else the newest /usr/lib/postgresql/N/bin. */
function psqlPath() {
  const onPath = spawnSync('sh', ['-c', 'command -v psql'], { encoding: 'utf8' });
  if (onPath.status === 0 && onPath.stdout.trim()) return onPath.stdout.trim();
  const base = '/usr/lib/postgresql';
  const versions = fileExists(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const p = join(base, v, 'bin', 'psql');
    if (fileExists(p)) return p;
  }
  throw new Error('MCP_BRIDGE_TEST_PG is set but psql was not found (PATH or /usr/lib/postgresql/*/bin)');
}

function psql(url, sql) {
  const r = spawnSync(psqlPath(), [url, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { encoding: 'utf8' });
  assert.equal(r.status, 0, `psql failed: ${r.stderr}`);
}

/** The database arguments and environment for this test: a fresh PostgreSQL database, or the temp file. */
function database(t, env) {
  if (!PG_ADMIN) return { args: ['--db', env.db], extra: {} };
  const name = `e2e_http_${randomBytes(6).toString('hex')}`;
  psql(PG_ADMIN, `CREATE DATABASE ${name}`);
  t.after(() => psql(PG_ADMIN, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  const url = new URL(PG_ADMIN);
  url.pathname = `/${name}`;
  return { args: ['--database-url', url.toString()], extra: { MCP_BRIDGE_KEY: PG_KEY } };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function run(env, db, ...args) {
  const r = spawnSync(BIN, [...db.args, ...args], { env: serverEnv(env.dir, db.extra), encoding: 'utf8' });
  assert.equal(r.status, 0, `mcp-bridge ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** `mcp-bridge serve --http 127.0.0.1:PORT`, ready (GET /readyz) before it returns; killed after the test. */
async function startServer(t, env, db) {
  const port = await freePort();
  const logPath = join(env.dir, 'http.stderr.log');
  const log = openSync(logPath, 'w');
  const proc = spawn(BIN, [...db.args, 'serve', '--http', `127.0.0.1:${port}`], {
    env: serverEnv(env.dir, { ...db.extra, MCP_BRIDGE_RATE_LIMIT: 'off', MCP_BRIDGE_READ_RATE_LIMIT: 'off' }),
    stdio: ['ignore', 'ignore', log],
  });
  closeSync(log);
  let exited = null;
  proc.on('exit', (code, signal) => { exited = { code, signal }; });
  const stopped = new Promise((resolve) => proc.once('exit', resolve));
  t.after(async () => {
    if (exited === null) {
      proc.kill('SIGTERM');
      await stopped;
    }
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    assert.equal(exited, null, `server exited early (${JSON.stringify(exited)}): ${readFileSync(logPath, 'utf8').slice(-2000)}`);
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.status === 200) break;
    } catch { /* not listening yet */ }
    assert.ok(Date.now() < deadline, `server not ready within 30 s: ${readFileSync(logPath, 'utf8').slice(-2000)}`);
    await sleep(50);
  }
  return { base, mcp: new URL(`${base}/mcp`), log: () => readFileSync(logPath, 'utf8') };
}

/** A TypeScript SDK client over streamable HTTP with a bearer credential; tools listed first, so callTool validates. */
async function connectHttp(t, server, name, credential) {
  const headers = credential ? { Authorization: `Bearer ${credential}` } : {};
  const transport = new StreamableHTTPClientTransport(server.mcp, { requestInit: { headers } });
  const client = new Client({ name: `e2e-http-${name}`, version: '0.0.1' }, { capabilities: {} });
  await client.connect(transport);
  t.after(async () => { await client.close(); });
  const tools = (await client.listTools()).tools;
  return { client, tools, name };
}

test('typescript sdk over streamable http: create, send, receive exactly once, outputSchema validated', async (t) => {
  const env = tempBridge(t);
  const db = database(t, env);
  const server = await startServer(t, env, db);
  const leadCred = JSON.parse(run(env, db, 'agent', 'add', 'lead', '--json')).credential;
  const workerCred = JSON.parse(run(env, db, 'agent', 'add', 'worker', '--json')).credential;

  const lead = await connectHttp(t, server, 'lead', leadCred);
  const worker = await connectHttp(t, server, 'worker', workerCred);
  for (const tool of lead.tools) {
    assert.equal(tool.outputSchema?.type, 'object', `${tool.name}: no outputSchema, so callTool would not validate`);
  }
  assert.ok(lead.tools.some((x) => x.name === 'my_conversations'), 'a bearer agent is offered my_conversations');
  assert.equal(lead.client.getServerVersion()?.name, 'mcp-bridge');

  const created = await ok(lead, 'create_conversation', { with_agents: ['worker'] });
  assert.match(created.conversation_id, /^conv_[0-9a-f]{32}$/);
  const conv = created.conversation_id;
  const mine = await ok(worker, 'my_conversations', {});
  assert.deepEqual(mine.conversations.map((c) => c.conversation_id), [conv]);

  const bodies = ['first over http', 'second over http', 'third over http'];
  const ids = [];
  for (const message of bodies) {
    const sent = await ok(lead, 'send_message', { conversation_id: conv, message });
    assert.deepEqual(sent.recipients, ['worker'], JSON.stringify(sent));
    ids.push(sent.message_id);
  }
  assert.equal(new Set(ids).size, bodies.length, `message ids must be distinct: ${ids}`);

  const got = await ok(worker, 'wait_for_messages', { conversation_id: conv, timeout_seconds: 10 });
  assert.equal(got.timed_out, false);
  assert.deepEqual(got.messages.map((m) => m.message), bodies);
  assert.deepEqual(got.messages.map((m) => m.seq), ids);
  for (const m of got.messages) assert.equal(m.from_role, 'lead', JSON.stringify(m));

  // Exactly once: nothing again, by check or by wait.
  const again = await ok(worker, 'check_messages', { conversation_id: conv });
  assert.deepEqual(again.messages, []);
  const waited = await ok(worker, 'wait_for_messages', { conversation_id: conv, timeout_seconds: 1 });
  assert.deepEqual(waited.messages, []);
  assert.equal(waited.timed_out, true);

  // Receipts: read by the worker.
  const status = await ok(lead, 'message_status', { conversation_id: conv, message_id: ids[0] });
  assert.equal(status.recipients.length, 1);
  assert.equal(status.recipients[0].role, 'worker');
  assert.notEqual(status.recipients[0].read_at, null);

  // The server never logged a credential.
  for (const cred of [leadCred, workerCred]) assert.ok(!server.log().includes(cred), 'a credential reached the log');
});

test('typescript sdk over streamable http: no credential, or a wrong one, is 401', async (t) => {
  const env = tempBridge(t);
  const db = database(t, env);
  const server = await startServer(t, env, db);
  run(env, db, 'agent', 'add', 'lead', '--json');

  for (const [what, credential] of [['no credential', null], ['wrong credential', `mcpa_${'A'.repeat(43)}`]]) {
    const transport = new StreamableHTTPClientTransport(server.mcp, {
      requestInit: { headers: credential ? { Authorization: `Bearer ${credential}` } : {} },
    });
    const client = new Client({ name: 'e2e-http-anonymous', version: '0.0.1' }, { capabilities: {} });
    await assert.rejects(client.connect(transport), (e) => {
      assert.ok(e instanceof StreamableHTTPError, `${what}: expected StreamableHTTPError, got ${e?.constructor?.name}: ${e?.message}`);
      assert.equal(e.code, 401, `${what}: ${e.message}`);
      return true;
    });
    await client.close();
  }
});

// Shared helpers for the client-conformance suite: every test spawns the real
// release binary (`mcp-bridge serve --db <tmp>/bridge.db`) through a client
// written by others, in its own temporary directory.

import { mkdtempSync, mkdirSync, rmSync, existsSync, accessSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, '..', '..');

/** The binary under test: MCP_BRIDGE_BIN, else target/release/mcp-bridge. */
export const BIN = process.env.MCP_BRIDGE_BIN
  ? resolve(process.env.MCP_BRIDGE_BIN)
  : join(REPO_ROOT, 'target', 'release', 'mcp-bridge');

try {
  accessSync(BIN, constants.X_OK);
} catch {
  throw new Error(`mcp-bridge binary not found or not executable at ${BIN} (set MCP_BRIDGE_BIN or cargo build --release)`);
}

export const TOOL_NAMES = [
  'check_messages',
  'check_partner_status',
  'create_conversation',
  'list_participants',
  'message_status',
  'read_history',
  'send_message',
  'send_to_partner',
  'update_my_status',
  'wait_for_messages',
];

/** A fresh temp dir with a HOME inside, removed when the test ends. */
export function tempBridge(t) {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-bridge-clients-'));
  mkdirSync(join(dir, 'home'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, db: join(dir, 'bridge.db') };
}

/** The environment a spawned server gets: a private HOME, plus overrides. */
export function serverEnv(dir, extra = {}) {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: join(dir, 'home'),
    XDG_CONFIG_HOME: join(dir, 'home', '.config'),
    XDG_DATA_HOME: join(dir, 'home', '.local', 'share'),
    ...extra,
  };
}

/**
 * One agent: a TypeScript SDK Client connected over stdio to its own
 * `mcp-bridge serve` process, as VS Code or Cursor would connect. The tool
 * list is fetched first, exactly as those hosts do, so `callTool` validates
 * every structured result against the tool's declared outputSchema.
 */
export async function connectAgent(t, env, name = 'agent') {
  const transport = new StdioClientTransport({
    command: BIN,
    args: ['serve', '--db', env.db],
    env: serverEnv(env.dir, env.extra ?? {}),
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk) => { stderr += chunk.toString(); });
  const client = new Client({ name: `e2e-${name}`, version: '0.0.1' }, { capabilities: {} });
  await client.connect(transport);
  const tools = (await client.listTools()).tools;
  t.after(async () => { await client.close(); });
  return { client, tools, stderr: () => stderr, name };
}

/** Calls a tool the way a host does; a thrown McpError fails with the host's view. */
export async function call(agent, name, args, options) {
  try {
    return await agent.client.callTool({ name, arguments: args }, undefined, options);
  } catch (e) {
    throw new assert.AssertionError({
      message: `${agent.name}: ${name} threw instead of returning a tool result: ${e?.code ?? ''} ${e?.message ?? e}`,
    });
  }
}

/** The text blocks of a result, joined. */
export function textOf(result) {
  return (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

/** A call that must succeed: returns its structuredContent. */
export async function ok(agent, name, args) {
  const result = await call(agent, name, args);
  assert.notEqual(result.isError, true, `${agent.name}: ${name} failed: ${textOf(result)}`);
  assert.equal(typeof result.structuredContent, 'object', `${name}: no structuredContent`);
  assert.ok(textOf(result).trim(), `${name}: no text content`);
  return result.structuredContent;
}

/**
 * The error object an isError result carries, wherever the server puts it:
 * `structuredContent.error`, or a JSON text block (`{"error": {...}}` or the
 * bare object). Shape-agnostic on purpose; what must be in it is asserted by
 * `expectError`.
 */
export function errorObjectOf(result) {
  const candidates = [];
  const sc = result.structuredContent;
  if (sc && typeof sc === 'object') {
    if (sc.error && typeof sc.error === 'object') candidates.push(sc.error);
    else if (typeof sc.code === 'string') candidates.push(sc);
  }
  for (const block of result.content ?? []) {
    if (block.type !== 'text') continue;
    // The whole text, then each line from the last: a JSON object anywhere on its own line counts.
    const pieces = [block.text.trim(), ...block.text.split('\n').map((l) => l.trim()).reverse()];
    for (const piece of pieces) {
      if (!piece.startsWith('{')) continue;
      try {
        const parsed = JSON.parse(piece);
        if (parsed?.error && typeof parsed.error === 'object') { candidates.push(parsed.error); break; }
        if (typeof parsed?.code === 'string') { candidates.push(parsed); break; }
      } catch { /* not JSON */ }
    }
  }
  return candidates[0];
}

/**
 * A call that must fail with `code` (and `field` when given) as an isError
 * tool result, never a thrown protocol error; the text must carry the code
 * and the field too, for hosts that show the model only text. Returns the error object.
 */
export async function expectError(agent, name, args, code, field) {
  const result = await call(agent, name, args);
  const text = textOf(result);
  assert.equal(result.isError, true, `${name}: expected isError with ${code}, got ${JSON.stringify(result).slice(0, 400)}`);
  const error = errorObjectOf(result);
  assert.ok(error, `${name}: isError result carries no error object (structured or JSON text): ${JSON.stringify(result).slice(0, 400)}`);
  assert.equal(error.code, code, `${name}: expected code ${code}, got ${JSON.stringify(error)}`);
  assert.equal(typeof error.message, 'string');
  assert.ok(error.message.trim(), `${name}: empty error message`);
  if (field !== undefined) assert.equal(error.field, field, `${name}: expected field ${field}, got ${JSON.stringify(error)}`);
  assert.ok(text.includes(code), `${name}: text does not name the code ${code}: ${text.slice(0, 300)}`);
  if (field !== undefined) assert.ok(text.includes(field), `${name}: text does not name the field ${field}: ${text.slice(0, 300)}`);
  return { error, text, result };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export { existsSync };

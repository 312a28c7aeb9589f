// The MCP Inspector CLI (`mcp-inspector --cli`), pinned in package.json,
// spawning the release binary over stdio: tools/list, a call, an error.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BIN, TOOL_NAMES, tempBridge, serverEnv, errorObjectOf } from './lib.mjs';

/** The Inspector CLI's exit code for a tool result with isError: true (EXIT_CODES.TOOL_ERROR). */
const TOOL_ERROR_EXIT = 5;

const INSPECTOR = join(dirname(fileURLToPath(import.meta.url)), 'node_modules', '.bin', 'mcp-inspector');

/** Runs the inspector CLI against `mcp-bridge serve --db <db>`; resolves with exit code, stdout, stderr. */
function inspector(env, ...args) {
  const home = join(env.dir, 'home');
  const cliArgs = ['--cli', BIN, 'serve', '--db', env.db, '-e', `HOME=${home}`, ...args];
  return new Promise((resolve) => {
    execFile(INSPECTOR, cliArgs, { env: serverEnv(env.dir), timeout: 90_000, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => resolve({ code: error ? (error.code ?? 1) : 0, stdout, stderr }));
  });
}

function json(run, what, exitCode = 0) {
  assert.equal(run.code, exitCode, `${what}: inspector exited ${run.code}; stdout ${run.stdout.slice(0, 500)} stderr ${run.stderr.slice(0, 500)}`);
  try {
    return JSON.parse(run.stdout);
  } catch {
    assert.fail(`${what}: inspector stdout is not JSON: ${run.stdout.slice(0, 500)}`);
  }
}

test('inspector cli: tools/list lists the seven tools, schema portability check clean', async (t) => {
  const env = tempBridge(t);
  const run = await inspector(env, '--method', 'tools/list', '--strict');
  const listing = json(run, 'tools/list');
  assert.deepEqual(listing.tools.map((x) => x.name).sort(), TOOL_NAMES);
  for (const tool of listing.tools) {
    assert.ok(tool.outputSchema, `${tool.name}: no outputSchema`);
  }
  // --strict prints every portability problem (non-standard formats, array
  // `type` nullability, ...) on stderr; issue 11 asks for none.
  assert.doesNotMatch(run.stderr, /Warning|Error/, `schema portability findings:\n${run.stderr.slice(0, 3000)}`);
});

test('inspector cli: tools/call create_conversation returns the conversation and its tokens', async (t) => {
  const env = tempBridge(t);
  const run = await inspector(env, '--method', 'tools/call', '--tool-name', 'create_conversation',
    '--tool-arg', 'my_role=planner', 'partner_role=coder');
  const result = json(run, 'tools/call');
  assert.notEqual(result.isError, true, JSON.stringify(result));
  const sc = result.structuredContent;
  assert.match(sc.conversation_id, /^conv_[0-9a-f]{32}$/);
  assert.match(sc.session_a_token, /^mcpb_/);
  assert.match(sc.session_b_token, /^mcpb_/);
  const text = result.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
  for (const needed of [sc.conversation_id, sc.session_a_token, sc.session_b_token]) {
    assert.ok(text.includes(needed), `the text must carry ${needed.slice(0, 10)}…: ${text}`);
  }
});

test('inspector cli: a refused call is an isError result with its code and field, not a protocol failure', async (t) => {
  const env = tempBridge(t);
  const run = await inspector(env, '--method', 'tools/call', '--tool-name', 'check_messages',
    '--tool-arg', `conversation_id=conv_${'0'.repeat(32)}`, 'session_id=a', `token=mcpb_${'x'.repeat(43)}`);
  // The CLI prints the tool result and exits TOOL_ERROR (5); a result it
  // could not accept (e.g. structured content violating outputSchema) is a
  // protocol failure instead: exit 1 and no result on stdout.
  const result = json(run, 'tools/call (refused)', TOOL_ERROR_EXIT);
  assert.equal(result.isError, true, JSON.stringify(result));
  const text = result.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
  assert.match(text, /conversation_not_found/);
  const error = errorObjectOf(result);
  assert.equal(error?.code, 'conversation_not_found', JSON.stringify(result));
  assert.equal(error?.field, 'conversation_id', JSON.stringify(result));
});

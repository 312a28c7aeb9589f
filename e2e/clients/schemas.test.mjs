// Every tool's inputSchema and outputSchema compiles under Ajv in strict mode
// (JSON Schema 2020-12, the MCP default dialect when `$schema` is absent)
// without a single warning, and every structured SUCCESS result the bridge
// returns validates against its tool's outputSchema under that strict Ajv.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

import { TOOL_NAMES, tempBridge, connectAgent, call, textOf, sleep } from './lib.mjs';

/** A strict Ajv that records every warning instead of printing it. */
function strictAjv() {
  const warnings = [];
  const logger = { log() {}, warn: (...a) => warnings.push(a.join(' ')), error: (...a) => warnings.push(a.join(' ')) };
  const ajv = new Ajv2020({ strict: true, allErrors: true, logger });
  addFormats(ajv);
  return { ajv, warnings };
}

function compileStrict(schema, what) {
  const { ajv, warnings } = strictAjv();
  let validate;
  try {
    validate = ajv.compile(schema);
  } catch (e) {
    assert.fail(`${what}: Ajv strict mode refuses the schema: ${e.message}`);
  }
  assert.deepEqual(warnings, [], `${what}: Ajv strict mode warns`);
  return validate;
}

test('ajv strict: every inputSchema and outputSchema compiles without a warning; every tool has a title', async (t) => {
  const env = tempBridge(t);
  const a = await connectAgent(t, env, 'A');
  assert.deepEqual(a.tools.map((x) => x.name).sort(), TOOL_NAMES);
  for (const tool of a.tools) {
    await t.test(`${tool.name} title`, () => {
      assert.ok(typeof tool.title === 'string' && tool.title.trim(), `${tool.name}: no top-level title`);
    });
    await t.test(`${tool.name} inputSchema`, () => compileStrict(tool.inputSchema, `${tool.name} inputSchema`));
    await t.test(`${tool.name} outputSchema`, () => compileStrict(tool.outputSchema, `${tool.name} outputSchema`));
  }
});

test('ajv strict: every tool\'s structured success results validate against its outputSchema', async (t) => {
  const env = tempBridge(t);
  const A = await connectAgent(t, env, 'A');
  const B = await connectAgent(t, env, 'B');
  const { ajv } = strictAjv();
  // Compile leniently here only if strict compilation fails, so that a schema
  // refused above does not hide whether results match it; the refusal itself
  // is the other test's finding.
  const validators = {};
  for (const tool of A.tools) {
    try {
      validators[tool.name] = ajv.compile(tool.outputSchema);
    } catch {
      const lax = new Ajv2020({ strict: false, allErrors: true, logger: false });
      addFormats(lax);
      validators[tool.name] = lax.compile(tool.outputSchema);
    }
  }
  const seen = new Set();
  async function success(agent, name, args) {
    const result = await call(agent, name, args);
    assert.notEqual(result.isError, true, `${name}: ${textOf(result)}`);
    const validate = validators[name];
    assert.ok(validate(result.structuredContent),
      `${name}: structuredContent ${JSON.stringify(result.structuredContent).slice(0, 400)} violates outputSchema: ${ajv.errorsText(validate.errors)}`);
    seen.add(name);
    return result.structuredContent;
  }

  const c = await success(A, 'create_conversation', { my_role: 'planner', partner_role: 'coder' });
  const ca = { conversation_id: c.conversation_id, session_id: 'a', token: c.session_a_token };
  const cb = { conversation_id: c.conversation_id, session_id: 'b', token: c.session_b_token };

  await success(A, 'check_partner_status', ca); // partner never reported: nullable fields null
  await success(B, 'check_messages', cb); // empty inbox
  await success(B, 'wait_for_messages', { ...cb, timeout_seconds: 0 }); // timed out
  await success(A, 'read_history', ca); // empty history
  await success(A, 'send_to_partner', { ...ca, message: 'plain' });
  await success(A, 'send_to_partner', {
    ...ca, message: 'key AKIAIOSFODNN7EXAMPLE here', action_type: 'question', files_involved: ['a.rs', 'b.rs'],
  }); // with redactions
  await success(B, 'check_messages', { ...cb, peek: true });
  await success(B, 'check_messages', cb);
  const waiting = success(B, 'wait_for_messages', { ...cb, timeout_seconds: 20 });
  await sleep(200);
  await success(A, 'send_to_partner', { ...ca, message: 'wake up', action_type: 'proposal' });
  await waiting; // woken with a message
  await success(B, 'update_my_status', { ...cb, status: 'working', note: 'on it' });
  await success(B, 'update_my_status', { ...cb, status: 'blocked' }); // no note
  await success(A, 'check_partner_status', ca); // partner reported
  await success(B, 'check_partner_status', cb);
  await success(A, 'read_history', { ...ca, limit: 1 }); // more: true
  await success(A, 'read_history', { ...ca, after_seq: 0, limit: 100 });

  // Teams: a conversation of three, addressed messages, receipts.
  const t3 = await success(A, 'create_conversation', { my_role: 'lead', partner_roles: ['dev', 'qa'] });
  const ta = { conversation_id: t3.conversation_id, session_id: 'a', token: t3.seats[0].token };
  const tb = { conversation_id: t3.conversation_id, session_id: 'b', token: t3.seats[1].token };
  const sent = await success(A, 'send_message', { ...ta, message: 'dev only', to: ['dev'] });
  await success(A, 'message_status', { ...ta, message_id: sent.message_id }); // read_at null
  await success(B, 'check_messages', tb);
  await success(B, 'send_message', { ...tb, message: 'done', reply_to: sent.message_id, action_type: 'answer' });
  await success(A, 'message_status', { ...ta, message_id: sent.message_id }); // read_at set
  await success(A, 'list_participants', ta);

  assert.deepEqual([...seen].sort(), TOOL_NAMES, 'every tool was exercised');
});

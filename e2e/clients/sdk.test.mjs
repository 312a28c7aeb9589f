// The official TypeScript SDK (`Client.callTool`, which validates structured
// content against the tool's outputSchema, as VS Code and Cursor do) against
// two `mcp-bridge serve` processes on one database.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { TOOL_NAMES, tempBridge, connectAgent, call, ok, expectError, textOf, sleep } from './lib.mjs';

async function createConversation(a) {
  const c = await ok(a, 'create_conversation', { my_role: 'planner', partner_role: 'coder' });
  assert.match(c.conversation_id, /^conv_[0-9a-f]{32}$/);
  return {
    id: c.conversation_id,
    a: { conversation_id: c.conversation_id, session_id: 'a', token: c.session_a_token },
    b: { conversation_id: c.conversation_id, session_id: 'b', token: c.session_b_token },
  };
}

test('typescript sdk: listTools gives the seven tools with object input and output schemas', async (t) => {
  const env = tempBridge(t);
  const a = await connectAgent(t, env, 'A');
  assert.deepEqual(a.tools.map((x) => x.name).sort(), TOOL_NAMES);
  for (const tool of a.tools) {
    assert.ok(tool.description?.trim(), `${tool.name}: no description`);
    assert.equal(tool.inputSchema.type, 'object', tool.name);
    assert.equal(tool.outputSchema?.type, 'object', `${tool.name}: outputSchema`);
  }
  const version = a.client.getServerVersion();
  assert.equal(version?.name, 'mcp-bridge');
});

test('typescript sdk: two agents in two processes complete a full exchange, wait woken by the other process', async (t) => {
  const env = tempBridge(t);
  const A = await connectAgent(t, env, 'A');
  const B = await connectAgent(t, env, 'B');
  const conv = await createConversation(A);

  const sent = await ok(A, 'send_to_partner', { ...conv.a, message: 'please review src/lib.rs', action_type: 'review_request', files_involved: ['src/lib.rs'] });
  assert.ok(sent.message_id !== undefined && sent.message_id !== null, JSON.stringify(sent));

  const inbox = await ok(B, 'check_messages', conv.b);
  assert.equal(inbox.messages.length, 1, JSON.stringify(inbox));
  assert.equal(inbox.messages[0].message, 'please review src/lib.rs');
  assert.equal(inbox.messages[0].action_type, 'review_request');
  assert.deepEqual(inbox.messages[0].files_involved, ['src/lib.rs']);
  const again = await ok(B, 'check_messages', conv.b);
  assert.equal(again.messages.length, 0, 'a message is delivered exactly once');

  const st = await ok(B, 'update_my_status', { ...conv.b, status: 'working', note: 'reviewing' });
  assert.equal(st.status, 'working');
  const partner = await ok(A, 'check_partner_status', conv.a);
  assert.equal(partner.partner_role, 'coder');
  assert.equal(partner.status, 'working');
  assert.equal(partner.note, 'reviewing');
  assert.equal(partner.alive, true);

  // B's long poll is woken by A's send from the other process.
  const waiting = call(B, 'wait_for_messages', { ...conv.b, timeout_seconds: 30 });
  await sleep(300);
  await ok(A, 'send_to_partner', { ...conv.a, message: 'second: are you there?', action_type: 'question' });
  const woke = await waiting;
  assert.notEqual(woke.isError, true, textOf(woke));
  assert.equal(woke.structuredContent.timed_out, false);
  assert.deepEqual(woke.structuredContent.messages.map((m) => m.message), ['second: are you there?']);

  await ok(B, 'send_to_partner', { ...conv.b, message: 'yes, looks good', action_type: 'answer' });
  const replies = await ok(A, 'check_messages', conv.a);
  assert.deepEqual(replies.messages.map((m) => m.message), ['yes, looks good']);

  const history = await ok(A, 'read_history', conv.a);
  assert.deepEqual(history.messages.map((m) => m.message),
    ['please review src/lib.rs', 'second: are you there?', 'yes, looks good']);
  assert.equal(history.more, false);

  const quiet = await ok(A, 'wait_for_messages', { ...conv.a, timeout_seconds: 0 });
  assert.equal(quiet.timed_out, true);
  assert.deepEqual(quiet.messages, []);
});

test('typescript sdk: every error an agent can cause arrives as an isError result with code and field', async (t) => {
  const env = tempBridge(t);
  env.extra = { MCP_BRIDGE_RATE_LIMIT: '3/min' };
  const A = await connectAgent(t, env, 'A');
  const B = await connectAgent(t, env, 'B');
  const conv = await createConversation(A);

  await t.test('wrong token (never issued)', async () => {
    await expectError(A, 'check_messages', { ...conv.a, token: 'mcpb_' + 'x'.repeat(43) }, 'invalid_token', 'token');
  });
  await t.test("wrong seat (A's token for seat b, from the other process)", async () => {
    await expectError(B, 'check_messages', { ...conv.b, token: conv.a.token }, 'invalid_token', 'token');
  });
  await t.test('a seat the conversation does not have', async () => {
    await expectError(B, 'check_partner_status', { ...conv.b, session_id: 'q' }, 'invalid_argument', 'session_id');
    // 'c' has a seat's shape (teams have up to 16) but a conversation of two has no seat c.
    await expectError(B, 'check_partner_status', { ...conv.b, session_id: 'c' }, 'invalid_argument', 'session_id');
  });
  await t.test('unknown conversation', async () => {
    await expectError(A, 'send_to_partner', { ...conv.a, conversation_id: 'conv_' + '0'.repeat(32), message: 'hi' },
      'conversation_not_found', 'conversation_id');
  });
  await t.test('message too large (51,201 bytes)', async () => {
    await expectError(A, 'send_to_partner', { ...conv.a, message: 'x'.repeat(51_201) }, 'message_too_large', 'message');
  });
  await t.test('unknown field', async () => {
    await expectError(A, 'send_to_partner', { ...conv.a, message: 'hi', bogus_field: 1 }, 'invalid_argument', 'bogus_field');
  });
  await t.test('wrong type', async () => {
    await expectError(A, 'read_history', { ...conv.a, limit: 'ten' }, 'invalid_argument', 'limit');
  });
  await t.test('missing required field', async () => {
    await expectError(A, 'create_conversation', { my_role: 'planner' }, 'invalid_argument', 'partner_role');
  });

  await t.test('a wait longer than 55 s (the TypeScript SDK gives up at 60 s)', async () => {
    await expectError(B, 'wait_for_messages', { ...conv.b, timeout_seconds: 60 }, 'invalid_argument', 'timeout_seconds');
  });

  // rate limited: 3 sends per minute per session
  await t.test('rate limited, with retry-after in the error and the text', async () => {
    await ok(A, 'send_to_partner', { ...conv.a, message: 'one' });
    await ok(A, 'send_to_partner', { ...conv.a, message: 'two' });
    await ok(A, 'send_to_partner', { ...conv.a, message: 'three' });
    const limited = await expectError(A, 'send_to_partner', { ...conv.a, message: 'four' }, 'rate_limited');
    const retry = limited.error.retry_after_seconds;
    assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, `retry_after_seconds: ${JSON.stringify(limited.error)}`);
    assert.ok(limited.text.includes(String(retry)), `the text must carry the retry-after (${retry}): ${limited.text}`);
  });
});

test('typescript sdk: an expired conversation is an isError result with its code and field', async (t) => {
  const env = tempBridge(t);
  env.extra = { MCP_BRIDGE_CONVERSATION_TTL: '1s' };
  const A = await connectAgent(t, env, 'A');
  const B = await connectAgent(t, env, 'B');
  const conv = await createConversation(A);
  await sleep(2_000);
  await t.test('send_to_partner', async () => {
    await expectError(A, 'send_to_partner', { ...conv.a, message: 'late' }, 'conversation_expired', 'conversation_id');
  });
  await t.test('check_messages, from the other process', async () => {
    await expectError(B, 'check_messages', conv.b, 'conversation_expired', 'conversation_id');
  });
});

test('typescript sdk: a wait the client gave up on (request timeout, then notifications/cancelled) marks nothing read', async (t) => {
  const env = tempBridge(t);
  const A = await connectAgent(t, env, 'A');
  const B = await connectAgent(t, env, 'B');
  const conv = await createConversation(A);
  // The SDK's own per-request timeout: it rejects the call and sends
  // notifications/cancelled, as a host does when its patience runs out.
  await assert.rejects(
    B.client.callTool({ name: 'wait_for_messages', arguments: { ...conv.b, timeout_seconds: 30 } }, undefined, { timeout: 1_000 }),
    (e) => /timed out|timeout/i.test(String(e?.message)),
  );
  await sleep(300);
  await ok(A, 'send_to_partner', { ...conv.a, message: 'sent after B gave up waiting' });
  await sleep(500);
  const inbox = await ok(B, 'check_messages', conv.b);
  assert.deepEqual(inbox.messages.map((m) => m.message), ['sent after B gave up waiting'],
    'the abandoned wait must not have taken (and marked read) the message');
});

test('typescript sdk: listPrompts and getPrompt round trip, a missing argument is -32602 naming it', async (t) => {
  const env = tempBridge(t);
  const a = await connectAgent(t, env, 'A');
  assert.ok(a.client.getServerCapabilities()?.prompts, 'the prompts capability is not advertised');
  const { prompts } = await a.client.listPrompts();
  assert.deepEqual(prompts.map((p) => p.name), [
    'start_team', 'join_conversation', 'api_first', 'security_review', 'specialised_expertise', 'parallel_problem_solving',
  ]);
  const start = prompts.find((p) => p.name === 'start_team');
  assert.deepEqual(start.arguments.filter((x) => x.required).map((x) => x.name), ['goal']);

  const got = await a.client.getPrompt({ name: 'start_team', arguments: { goal: 'ship it', roles: 'backend,frontend' } });
  assert.equal(got.messages.length, 1);
  assert.equal(got.messages[0].role, 'user');
  const text = got.messages[0].content.text;
  assert.ok(text.includes('create_conversation {"my_role":"lead","partner_roles":["backend","frontend"]}'), text);
  assert.ok(text.includes('"ship it"') && text.includes('wait_for_messages'), text);

  await assert.rejects(a.client.getPrompt({ name: 'start_team', arguments: {} }), (e) => {
    assert.equal(e.code, -32602, String(e));
    assert.match(e.message, /missing argument goal/);
    return true;
  });
});

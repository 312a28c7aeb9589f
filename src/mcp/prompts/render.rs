//! The text of each prompt: a few numbered steps, each naming a tool and the
//! exact shape of its arguments. Only checked values reach this text: names
//! that follow the role rule, ids of the right shape, and free text already
//! quoted by [`super::quote`]. Placeholders in angle brackets are for the
//! model to fill in from earlier results.

use super::{Args, Error};

/// Said once per prompt, so every call below can be written without
/// credentials: a registered agent needs none, a token seat adds its own.
const CREDENTIALS: &str = "Calls below leave out session_id and token. If my_conversations is among your tools you \
are a registered agent and need neither; otherwise add your seat's session_id and token to every call after \
create_conversation.";

/// `conversation_id` as every call after the first writes it.
const CONV: &str = r#""conversation_id":"<conversation_id>""#;

/// The wait that closes every loop: the longest the bridge allows.
const WAIT: &str = r#"wait_for_messages {"conversation_id":"<conversation_id>","timeout_seconds":55}"#;

/// The caller and the others it seats, in seat order: registered agents
/// first, then token seats (the order `create_conversation` gives them).
struct Team {
    me: String,
    agents: Vec<String>,
    roles: Vec<String>,
}

impl Team {
    /// A team whose names are unique, the caller's role included; a repeat
    /// is blamed on the argument where it appears second.
    fn new(
        me: String,
        agents: (&'static str, &[String]),
        roles: (&'static str, &[String]),
    ) -> Result<Self, Error> {
        let mut seen = vec![me.as_str()];
        for (argument, list) in [agents, roles] {
            for name in list {
                if seen.contains(&name.as_str()) {
                    return Err(Error::Duplicate {
                        argument,
                        mine: me.clone(),
                    });
                }
                seen.push(name);
            }
        }
        Ok(Self {
            me,
            agents: agents.1.to_vec(),
            roles: roles.1.to_vec(),
        })
    }

    /// A two-party team: `partner` is a registered agent when given, else a
    /// token seat with role `default`.
    fn pair(args: &Args, me: &str, default: &str) -> Result<Self, Error> {
        let partner: &[String] = args.names("partner");
        let fallback = [default.to_owned()];
        let roles: &[String] = if partner.is_empty() { &fallback } else { &[] };
        Self::new(me.to_owned(), ("partner", partner), ("partner", roles))
    }

    /// The partner of a two-party team, as `to` names it.
    fn partner(&self) -> &str {
        self.agents
            .first()
            .or(self.roles.first())
            .map_or("", String::as_str)
    }

    /// Step 1 and step 2: create the conversation, then hand out the seats.
    fn opening(&self) -> [String; 2] {
        let mut create = format!(r#"create_conversation {{"my_role":"{}""#, self.me);
        if !self.agents.is_empty() {
            create.push_str(&format!(r#","with_agents":{}"#, list(&self.agents)));
        }
        let choose = self.agents.is_empty() && self.roles.is_empty();
        if choose {
            create.push_str(r#","partner_roles":["<role>", ...]"#);
        } else if !self.roles.is_empty() {
            create.push_str(&format!(r#","partner_roles":{}"#, list(&self.roles)));
        }
        create.push_str(
            "}. Its result's seats list every seat's session_id, role and token; keep yours private.",
        );
        if choose {
            create.push_str(" Choose 1-15 roles (A-Z a-z 0-9 - _) that fit the goal.");
        }
        let mut seats = Vec::new();
        if !self.agents.is_empty() {
            seats.push(format!(
                "Registered agents ({}) take their seats at once and find the conversation with my_conversations; no token to hand out (with_agents works only when you are a registered agent too).",
                self.agents.join(", ")
            ));
        }
        if choose || !self.roles.is_empty() {
            let which = if choose {
                "each token seat".to_owned()
            } else {
                format!("token seat {}", self.roles.join(", "))
            };
            seats.push(format!(
                "For each token seat{which}: ask the human to give its agent conversation_id, the seat's session_id and token (the join_conversation prompt guides it). Never put a token in a message."
            ));
        }
        [create, seats.join(" ")]
    }
}

/// A JSON array of checked names (they need no escaping).
fn list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("[{}]", quoted.join(","))
}

/// A `send_message` to `to` with the given action type and the model's text.
fn send(to: &str, action: &str, message: &str, files: bool) -> String {
    let files = if files {
        r#","files_involved":["<path>"]"#
    } else {
        ""
    };
    format!(r#"send_message {{{CONV},"to":["{to}"],"action_type":"{action}","message":"{message}"{files}}}"#)
}

/// `update_my_status` with `status`.
fn status(status: &str) -> String {
    format!(r#"update_my_status {{{CONV},"status":"{status}"}}"#)
}

/// The heading, the credentials note and the numbered steps.
fn compose(heading: String, steps: impl IntoIterator<Item = String>) -> String {
    let mut text = format!("{heading}\n{CREDENTIALS}\n");
    for (i, step) in steps.into_iter().enumerate() {
        text.push_str(&format!("{}. {step}\n", i + 1));
    }
    text
}

pub(super) fn start_team(args: &Args) -> Result<String, Error> {
    let team = Team::new(
        args.name_or("my_role", "lead"),
        ("agents", args.names("agents")),
        ("roles", args.names("roles")),
    )?;
    let goal = args.text("goal").unwrap_or_default();
    let [create, seats] = team.opening();
    Ok(compose(
        format!(
            "You lead a team on mcp-bridge as {}. Goal (the human's words): {goal}",
            team.me
        ),
        [
            create,
            seats,
            format!(
                "Split the goal into a first task per participant and send each its own: {}.",
                send("<role>", "proposal", "<task, files, done when>", false)
            ),
            status("working") + ".",
            format!(
                r#"Loop on {WAIT}. Answer with send_message {{{CONV},"to":["<from_role>"],"reply_to":<seq>,"message":"..."}}. list_participants {{{CONV}}} shows status, liveness and unread counts; message_status {{{CONV},"message_id":<n>}} shows who has read a message."#
            ),
            format!(
                "When every participant's status is complete: {} and report to the human.",
                status("complete")
            ),
        ],
    ))
}

pub(super) fn join_conversation(args: &Args) -> Result<String, Error> {
    let id = args.text("conversation_id").unwrap_or_default();
    let seat = args
        .text("session_id")
        .map_or_else(|| "your session_id".to_owned(), |s| format!("session_id \"{s}\""));
    let conv = format!(r#""conversation_id":"{id}""#);
    Ok(format!(
        "Join mcp-bridge conversation {id}.\n\
1. If my_conversations lists it, you hold the seat as a registered agent: leave out session_id and token below. \
Otherwise ask the human for {seat} and its token (mcpb_...), which the conversation's creator received, and add both \
to every call. Never repeat the token in a message.\n\
2. read_history {{{conv}}} (again with after_seq=next_after_seq while more is true) for the goal and your task; \
it marks nothing read.\n\
3. update_my_status {{{conv},\"status\":\"working\",\"note\":\"joined\"}}; list_participants {{{conv}}} shows who is who.\n\
4. Loop on wait_for_messages {{{conv},\"timeout_seconds\":55}} and act on each message; reply with \
send_message {{{conv},\"to\":[\"<from_role>\"],\"reply_to\":<seq>,\"message\":\"...\"}}. \
Keep your status current: waiting, blocked (note why), complete.\n"
    ))
}

pub(super) fn api_first(args: &Args) -> Result<String, Error> {
    let team = Team::pair(args, "backend", "frontend")?;
    let (feature, partner) = (args.text("feature").unwrap_or_default(), team.partner());
    let [create, seats] = team.opening();
    Ok(compose(
        format!(
            "API-first development on mcp-bridge: you are the backend, {partner} builds the client. Feature (the human's words): {feature}"
        ),
        [
            create,
            seats,
            format!(
                "Before any code, write the API contract (endpoints, request and response shapes, status codes, errors) to a file and send it: {}.",
                send(partner, "proposal", "<contract summary>", true)
            ),
            format!(
                "{WAIT} until {partner} answers. Settle each question with action_type \"answer\" and reply_to its seq; send a revised contract as a new proposal. Implement only once {partner} agrees."
            ),
            format!(
                "Implement: {}; after each endpoint send action_type \"info\" with files_involved; when done send \"review_request\" and wait for the answer.",
                status("working")
            ),
            format!(
                "When {partner} confirms its client works against your API: {}.",
                status("complete")
            ),
        ],
    ))
}

pub(super) fn security_review(args: &Args) -> Result<String, Error> {
    let team = Team::pair(args, "developer", "security_reviewer")?;
    let (scope, partner) = (args.text("scope").unwrap_or_default(), team.partner());
    let [create, seats] = team.opening();
    Ok(compose(
        format!(
            "Security review on mcp-bridge: you implement, {partner} reviews every change for vulnerabilities. Scope (the human's words): {scope}"
        ),
        [
            create,
            seats,
            format!(
                "Brief the reviewer: {}.",
                send(partner, "info", "<scope, inputs, trust boundaries, where secrets live>", false)
            ),
            format!(
                "After each change: {}. Keep working meanwhile; check_messages {{{CONV}}} between steps.",
                send(partner, "review_request", "<what changed, what to check>", true)
            ),
            "For each finding: fix it, then answer with action_type \"answer\", reply_to the finding's seq and the fixed files; message_status shows when the reviewer has read it.".to_owned(),
            format!(
                "Never paste secrets, keys or tokens (they are redacted anyway). When the reviewer reports no open finding: {}.",
                status("complete")
            ),
        ],
    ))
}

pub(super) fn specialised_expertise(args: &Args) -> Result<String, Error> {
    let (agents, roles) = (args.names("agents"), args.names("roles"));
    let defaults = ["python_expert".to_owned(), "typescript_expert".to_owned()];
    let roles: &[String] = if agents.is_empty() && roles.is_empty() {
        &defaults
    } else {
        roles
    };
    let team = Team::new("coordinator".to_owned(), ("agents", agents), ("roles", roles))?;
    let task = args.text("task").unwrap_or_default();
    let experts = [team.agents.as_slice(), team.roles.as_slice()]
        .concat()
        .join(", ");
    let [create, seats] = team.opening();
    Ok(compose(
        format!(
            "Specialised expertise on mcp-bridge: you coordinate; each expert ({experts}) works only in its own domain. Task (the human's words): {task}"
        ),
        [
            create,
            seats,
            format!(
                "Split the task by domain and send each expert its part: {}.",
                send("<expert>", "proposal", "<its part, the interfaces it shares, done when>", false)
            ),
            "Tell the experts to settle shared interfaces with each other directly (to: the other expert, action_type \"question\"/\"answer\") and to copy you on each decision.".to_owned(),
            format!(
                "Loop on {WAIT}; list_participants {{{CONV}}} shows each expert's status and unread count. Integrate as parts arrive."
            ),
            format!("When every expert's status is complete: {} and report to the human.", status("complete")),
        ],
    ))
}

pub(super) fn parallel_problem_solving(args: &Args) -> Result<String, Error> {
    let team = Team::pair(args, "investigator", "mitigator")?;
    let (problem, partner) = (args.text("problem").unwrap_or_default(), team.partner());
    let [create, seats] = team.opening();
    Ok(compose(
        format!(
            "Parallel problem-solving on mcp-bridge: you find the root cause while {partner} ships a workaround; neither waits for the other. Problem (the human's words): {problem}"
        ),
        [
            create,
            seats,
            format!(
                "Hand over the workaround: {}. Agree who edits which files.",
                send(
                    partner,
                    "proposal",
                    "<symptoms, where to work around it, files it may touch>",
                    true
                )
            ),
            format!(
                "Investigate without blocking: check_messages {{{CONV}}} between steps; send each finding as action_type \"info\" with files_involved. {}.",
                status("working")
            ),
            format!(
                "Root cause found: send the fix as a \"proposal\" (say whether the workaround can go), then {WAIT} for {partner}'s answer before changing shared files."
            ),
            format!(
                "When the fix and the workaround are settled: {}.",
                status("complete")
            ),
        ],
    ))
}

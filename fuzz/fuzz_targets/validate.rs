//! Fuzzes the validator: it must never panic, `allowed` must match `plan.is_some()`, every
//! approved plan must survive render -> validate unchanged, and neither the rendering nor the
//! approval screen's listing may carry a control or invisible character (issue 10).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_bridge as crate_under_test;

use crate_under_test::exec::text::disguising_char;
use crate_under_test::exec::{Mode, render_plan};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for mode in Mode::ALL {
        let v = crate_under_test::exec::validate(s, mode);
        assert_eq!(v.allowed, v.plan.is_some());
        if let Some(plan) = v.plan {
            let rendered = render_plan(&plan);
            let again = crate_under_test::exec::validate(&rendered, mode);
            assert_eq!(again.plan.as_ref(), Some(&plan), "{s:?}");
            let shown = crate_under_test::exec::describe_plan(&plan).join("\n");
            assert_eq!(disguising_char(&rendered), None, "{s:?}");
            assert_eq!(disguising_char(&shown.replace('\n', " ")), None, "{s:?}");
        }
    }
});

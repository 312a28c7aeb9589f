//! Fuzzes the validator: it must never panic, `allowed` must match `plan.is_some()`, and
//! every approved plan must survive render -> validate unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_bridge as crate_under_test;

use crate_under_test::exec::{Mode, render_plan};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for mode in Mode::ALL {
        let v = crate_under_test::exec::validate(s, mode);
        assert_eq!(v.allowed, v.plan.is_some());
        if let Some(plan) = v.plan {
            let again = crate_under_test::exec::validate(&render_plan(&plan), mode);
            assert_eq!(again.plan.as_ref(), Some(&plan), "{s:?}");
        }
    }
});

//! Any bytes through the spec parser: it must return a tree or located errors,
//! never panic, overflow the stack or point outside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(errors) = symc::parse(&text, "fuzz.sym") {
        for d in &errors.items {
            let span = d.primary_span().expect("every syntax error is located");
            assert!(span.start <= span.end && span.end <= text.len());
        }
        assert!(!errors.render(false).is_empty());
    }
    // The command line's entry points for `symc basis` parse alone.
    if let Ok(rep) = symc::lang::parse_rep_expr(&text) {
        assert_eq!(symc::lang::parse_rep_expr(&rep.to_string()).ok(), Some(rep));
    }
});

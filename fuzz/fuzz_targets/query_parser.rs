//! The query parser on arbitrary UTF-8: it never panics, error offsets are
//! char boundaries inside the input, and a query that parses prints back to
//! text that parses to the same tree (and prints the same again).
//!
//! `cargo +nightly fuzz run query_parser`
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirewatch::rules::query::{parse_query, parse_query_all_errors};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match parse_query_all_errors(input) {
        Err(errors) => {
            assert!(!errors.is_empty(), "no error for {input:?}");
            for e in &errors {
                assert!(
                    e.offset <= input.len() && input.is_char_boundary(e.offset),
                    "{input:?}: offset {} off a char boundary",
                    e.offset
                );
                assert!(!e.message.is_empty());
            }
            assert!(errors.windows(2).all(|w| w[0].offset <= w[1].offset));
            assert_eq!(parse_query(input).err().as_ref(), errors.first());
        }
        Ok(tree) => {
            let printed = tree.to_string();
            let again = match parse_query(&printed) {
                Ok(again) => again,
                Err(e) => panic!("{input:?} printed as {printed:?}, which fails: {e:?}"),
            };
            assert_eq!(
                again.without_spans(),
                tree.without_spans(),
                "{input:?} printed as {printed:?}"
            );
            assert_eq!(again.to_string(), printed);
        }
    }
});

//! Literals in templates: strings, raw strings, characters, numbers,
//! booleans and nil, with the values and readings Go gives them.

use super::*;

fn number(src: &str) -> Number {
    match first_arg(src) {
        Arg::Number(n) => n,
        other => panic!("{src:?}: {other:?}"),
    }
}

fn string(src: &str) -> (String, bool) {
    match first_arg(src) {
        Arg::String { value, raw, .. } => (value, raw),
        other => panic!("{src:?}: {other:?}"),
    }
}

#[test]
fn interpreted_strings_are_unescaped() {
    let cases = [
        (r#"{{"a\nb"}}"#, "a\nb"),
        (r#"{{"\x41\101\u00e9\U0001F600"}}"#, "AAé😀"),
        (
            r#"{{"tab\there \"quoted\" back\\slash"}}"#,
            "tab\there \"quoted\" back\\slash",
        ),
        (r#"{{"\a\b\f\r\v"}}"#, "\u{7}\u{8}\u{c}\r\u{b}"),
        (r#"{{"é"}}"#, "é"),
        (r#"{{""}}"#, ""),
    ];
    for (src, want) in cases {
        assert_eq!(string(src), (want.to_string(), false), "{src}");
    }
}

#[test]
fn raw_strings_are_taken_as_written_less_carriage_returns() {
    assert_eq!(string(r"{{`c\nd`}}"), (r"c\nd".to_string(), true));
    assert_eq!(string("{{`a\nb`}}"), ("a\nb".to_string(), true));
    assert_eq!(string("{{`a\r\nb`}}"), ("a\nb".to_string(), true));
    assert_eq!(
        string("{{`{{ \"x\" }}`}}"),
        ("{{ \"x\" }}".to_string(), true)
    );
    match first_arg("{{`a`}}") {
        Arg::String { text, .. } => assert_eq!(text, "`a`"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn character_constants_are_rune_numbers() {
    let cases = [
        ("{{'a'}}", 'a'),
        (r"{{'\n'}}", '\n'),
        (r"{{'\u00e9'}}", 'é'),
        (r"{{'\x41'}}", 'A'),
        (r"{{'\101'}}", 'A'),
        ("{{'é'}}", 'é'),
        (r"{{'\''}}", '\''),
    ];
    for (src, want) in cases {
        let n = number(src);
        assert_eq!(n.value, NumberValue::Char(want), "{src}");
        let code = u32::from(want);
        assert_eq!(n.int, Some(i64::from(code)), "{src}");
        assert_eq!(n.uint, Some(u64::from(code)), "{src}");
        assert_eq!(n.float, Some(f64::from(code)), "{src}");
    }
}

#[test]
fn integers_in_every_base_are_ints() {
    let cases = [
        ("42", 42),
        ("-3", -3),
        ("+7", 7),
        ("0x1F", 31),
        ("0X1f", 31),
        ("0o17", 15),
        ("017", 15),
        ("0b101", 5),
        ("1_000", 1000),
        ("0x_ff", 255),
        ("-0", 0),
        ("00", 0),
        ("0x1e", 30),
        ("-9223372036854775808", i64::MIN),
    ];
    for (text, want) in cases {
        let n = number(&format!("{{{{ {text} }}}}"));
        assert_eq!(n.value, NumberValue::Int(want), "{text}");
        assert_eq!(n.text, text);
        assert_eq!(n.int, Some(want), "{text}");
    }
    // ParseUint refuses a sign: "+7" has no unsigned reading, "-0" has.
    assert_eq!(number("{{+7}}").uint, None);
    assert_eq!(number("{{-0}}").uint, Some(0));
}

#[test]
fn floats_are_floats_and_keep_their_integer_readings() {
    let cases = [
        ("1.5", 1.5, None),
        ("1.0", 1.0, Some(1)),
        ("1.", 1.0, Some(1)),
        ("1e3", 1000.0, Some(1000)),
        ("1E+3", 1000.0, Some(1000)),
        (".5", 0.5, None),
        ("-.5", -0.5, None),
        ("09.5", 9.5, None),
        ("0x1p4", 16.0, Some(16)),
        ("0x1P-2", 0.25, None),
        ("0x1.8p1", 3.0, Some(3)),
        ("1_000.5", 1000.5, None),
        ("1e-0_1", 0.1, None),
        // The sign hides the hex prefix from Go's test, so this is a float.
        ("-0x1e", -30.0, Some(-30)),
    ];
    for (text, want, int) in cases {
        let n = number(&format!("{{{{ {text} }}}}"));
        assert_eq!(n.value, NumberValue::Float(want), "{text}");
        assert_eq!(n.float, Some(want), "{text}");
        assert_eq!(n.int, int, "{text}");
    }
}

#[test]
fn integers_beyond_int64_are_uint_only() {
    let n = number("{{18446744073709551615}}");
    assert_eq!(n.value, NumberValue::Uint(u64::MAX));
    assert_eq!((n.int, n.uint), (None, Some(u64::MAX)));
    let n = number("{{9223372036854775808}}");
    assert_eq!(n.value, NumberValue::Uint(1 << 63));
}

#[test]
fn number_syntax_errors_use_go_messages() {
    let cases = [
        ("{{089}}", r#"integer overflow: "089""#),
        ("{{08}}", r#"integer overflow: "08""#),
        ("{{0_8}}", r#"integer overflow: "0_8""#),
        (
            "{{99999999999999999999}}",
            r#"integer overflow: "99999999999999999999""#,
        ),
        ("{{1e400}}", r#"illegal number syntax: "1e400""#),
        ("{{1__0}}", r#"illegal number syntax: "1__0""#),
        ("{{1_}}", r#"illegal number syntax: "1_""#),
        ("{{0x}}", r#"illegal number syntax: "0x""#),
        ("{{0o}}", r#"illegal number syntax: "0o""#),
        ("{{0x1.8}}", r#"illegal number syntax: "0x1.8""#),
        ("{{1e}}", r#"illegal number syntax: "1e""#),
        ("{{1.5e}}", r#"illegal number syntax: "1.5e""#),
        ("{{+}}", r#"illegal number syntax: "+""#),
        ("{{0b102}}", r#"bad number syntax: "0b102""#),
        ("{{1a}}", r#"bad number syntax: "1a""#),
        ("{{1.X}}", r#"bad number syntax: "1.X""#),
        ("{{1+2}}", r#"bad number syntax: "1+2""#),
        ("{{0x1e+3}}", r#"bad number syntax: "0x1e+3""#),
    ];
    for (src, want) in cases {
        let e = error(src);
        assert_eq!(e.message, want, "{src}");
        assert_eq!((e.kind, e.col), (ErrorKind::Go, 3), "{src}");
    }
}

#[test]
fn complex_numbers_and_non_utf8_strings_are_unsupported_not_invalid() {
    for (src, want) in [
        ("{{1i}}", "imaginary number 1i is not supported"),
        ("{{1+2i}}", "complex number 1+2i is not supported"),
    ] {
        let e = error(src);
        assert_eq!(
            (e.message.as_str(), e.kind),
            (want, ErrorKind::Unsupported),
            "{src}"
        );
    }
    let e = error(r#"{{"\xff"}}"#);
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("UTF-8"), "{}", e.message);
    let e = error("{{ template \"\\xff\" }}");
    assert_eq!((e.kind, e.col), (ErrorKind::Unsupported, 13));
}

#[test]
fn an_error_go_reports_wins_over_an_unsupported_literal() {
    let cases = [
        // Go reads `0i`, then refuses the `.7` glued to it.
        ("{{ 0i.7 }}", r#"unexpected ".7" in operand"#),
        (
            "{{ \"\\xff\" }}{{ nofunc }}",
            r#"function "nofunc" not defined"#,
        ),
        (
            "{{ 1i }}{{ if . }}",
            "unexpected EOF (the {{if}} at 1:9 has no {{end}})",
        ),
        // Complex literals fmt cannot scan are Go's errors.
        (
            "{{ 0x2_87+Ei }}",
            r#"strconv.ParseFloat: parsing "0x2_87": invalid syntax"#,
        ),
        ("{{ 1i+2i }}", "syntax error scanning complex number"),
    ];
    for (src, want) in cases {
        let e = error(src);
        assert_eq!((e.message.as_str(), e.kind), (want, ErrorKind::Go), "{src}");
    }
    // With nothing else wrong, the first unsupported literal is reported.
    let e = error("{{ 1 }}\n{{ 2i }}{{ 3i }}");
    assert_eq!((e.line, e.col, e.kind), (2, 4, ErrorKind::Unsupported));
}

#[test]
fn string_and_character_errors() {
    let cases = [
        (
            r#"{{"\q"}}"#,
            "invalid syntax (unknown escape sequence \\q)",
        ),
        ("{{\"abc}}", "unterminated quoted string"),
        ("{{\"a\nb\"}}", "unterminated quoted string"),
        ("{{`abc}}", "unterminated raw quoted string"),
        ("{{'ab'}}", "malformed character constant: 'ab'"),
        ("{{'a}}", "unterminated character constant"),
        ("{{''}}", "invalid syntax (unescaped quote)"),
    ];
    for (src, want) in cases {
        assert_eq!(error(src).message, want, "{src}");
    }
}

#[test]
fn booleans_nil_and_dot() {
    assert_eq!(root("{{true false nil}}"), "[A(true false nil)]");
    assert!(matches!(
        first_arg("{{ false }}"),
        Arg::Bool { value: false, .. }
    ));
    assert!(matches!(first_arg("{{ nil }}"), Arg::Nil(_)));
    assert!(matches!(first_arg("{{ . }}"), Arg::Dot(_)));
}

//! Number literals, read exactly as Go 1.19's template parser reads them:
//! `strconv.ParseUint`, `ParseInt` (base 0: `0x`, `0o`, `0b` and leading-`0`
//! octal, underscores between digits) and `ParseFloat` (decimal and hex
//! floats), combined by the rules of `parse.newNumber`, then classified by
//! exec's `idealConstant` for untyped use.

use super::ast::NumberValue;
use super::quote::go_quote;

/// Every reading Go makes of a number literal (see [`super::ast::Number`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Readings {
    pub value: NumberValue,
    pub int: Option<i64>,
    pub uint: Option<u64>,
    pub float: Option<f64>,
}

/// Why a number literal is refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NumberError {
    /// Go refuses it with this message.
    Go(String),
    /// Go accepts it as a complex number, which has no Tera counterpart.
    Imaginary,
}

/// Why Go's `strconv` refused a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumErr {
    Syntax,
    Range,
}

/// Checks a complex literal token (`1+2i`) as Go reads it (`fmt.Sscan`
/// into a `complex128`): `Ok` when Go accepts it, else Go's message.
pub(crate) fn check_complex(text: &str) -> Result<(), String> {
    const SYNTAX: &str = "syntax error scanning complex number";
    let mut rest = text;
    let real = float_token(&mut rest);
    let Some(sign) = rest
        .strip_prefix(['+', '-'])
        .map(|r| &rest[..rest.len() - r.len()])
    else {
        return Err(SYNTAX.to_string());
    };
    rest = &rest[1..];
    let imag = format!("{sign}{}", float_token(&mut rest));
    if !rest.starts_with('i') {
        return Err(SYNTAX.to_string());
    }
    scan_float(real)?;
    scan_float(&imag)
}

/// fmt's `floatToken`: the longest prefix of `s` that looks like a float
/// (sign, `0x`, digits and underscores, point, exponent), consumed from `s`.
fn float_token<'a>(s: &mut &'a str) -> &'a str {
    let text = *s;
    let b = text.as_bytes();
    let mut i = 0;
    let accept = |i: &mut usize, set: &[u8]| {
        let ok = b.get(*i).is_some_and(|c| set.contains(c));
        *i += usize::from(ok);
        ok
    };
    accept(&mut i, b"+-");
    // "Inf": an `i` not followed by "nf" stays taken, as in fmt.
    if accept(&mut i, b"iI") && accept(&mut i, b"nN") && accept(&mut i, b"fF") {
        *s = &text[i..];
        return &text[..i];
    }
    let mut digits: &[u8] = b"0123456789_";
    let mut exp: &[u8] = b"eEpP";
    if accept(&mut i, b"0") && accept(&mut i, b"xX") {
        digits = b"0123456789aAbBcCdDeEfF_";
        exp = b"pP";
    }
    while accept(&mut i, digits) {}
    if accept(&mut i, b".") {
        while accept(&mut i, digits) {}
    }
    if accept(&mut i, exp) {
        accept(&mut i, b"+-");
        while accept(&mut i, b"0123456789_") {}
    }
    *s = &text[i..];
    &text[..i]
}

/// fmt's `convertFloat`: `strconv.ParseFloat`, except that a decimal
/// mantissa may take a binary exponent (`1.5p3`).
fn scan_float(text: &str) -> Result<(), String> {
    let describe = |func: &str, err: NumErr| {
        let why = match err {
            NumErr::Syntax => "invalid syntax",
            NumErr::Range => "value out of range",
        };
        format!("strconv.{func}: parsing {}: {why}", go_quote(text))
    };
    match text.find('p') {
        Some(p) if !text.contains(['x', 'X']) => {
            parse_float(&text[..p]).map_err(|e| describe("ParseFloat", e))?;
            let exp = text[p + 1..]
                .strip_prefix(['+', '-'])
                .unwrap_or(&text[p + 1..]);
            if exp.is_empty() || !exp.bytes().all(|c| c.is_ascii_digit()) {
                return Err(describe("Atoi", NumErr::Syntax));
            }
            exp.parse::<i64>()
                .map(drop)
                .map_err(|_| describe("Atoi", NumErr::Range))
        }
        _ => parse_float(text)
            .map(drop)
            .map_err(|e| describe("ParseFloat", e)),
    }
}

/// Reads a number token (never a character constant) as `parse.newNumber`.
pub(crate) fn read_number(text: &str) -> Result<Readings, NumberError> {
    // An imaginary literal is complex unless Go cannot read the rest as a
    // float, in which case Go goes on and reports the integer failure.
    if let Some(mantissa) = text.strip_suffix('i')
        && parse_float(mantissa).is_ok()
    {
        return Err(NumberError::Imaginary);
    }
    let uint = parse_uint(text).ok();
    let mut int = parse_int(text).ok();
    // ParseUint refuses "-0"; Go patches the uint reading back in.
    let mut uint = match (int, uint) {
        (Some(0), _) => Some(0),
        (_, u) => u,
    };
    let mut float = int.map(|i| i as f64).or(uint.map(|u| u as f64));
    if int.is_none()
        && uint.is_none()
        && let Ok(f) = parse_float(text)
    {
        // A float reading of something that looks like an integer means
        // the integer was too large (or, for `089`, not octal).
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(NumberError::Go(format!(
                "integer overflow: {}",
                go_quote(text)
            )));
        }
        float = Some(f);
        // Go's `float64(int64(f)) == f`: integral and within range.
        let two_63 = 2f64.powi(63);
        if f.fract() == 0.0 && (-two_63..two_63).contains(&f) {
            int = Some(f as i64);
        }
        if f.fract() == 0.0 && (0.0..2.0 * two_63).contains(&f) {
            uint = Some(f as u64);
        }
    }
    let Some(float) = float else {
        return Err(NumberError::Go(format!(
            "illegal number syntax: {}",
            go_quote(text)
        )));
    };
    let value = ideal(text, int, uint, float);
    Ok(Readings {
        value,
        int,
        uint,
        float: Some(float),
    })
}

/// exec's `idealConstant`: the untyped value of a number (never a char).
fn ideal(text: &str, int: Option<i64>, uint: Option<u64>, float: f64) -> NumberValue {
    let hex_int = text.len() > 2
        && (text.starts_with("0x") || text.starts_with("0X"))
        && !text.contains(['p', 'P']);
    if !hex_int && text.contains(['.', 'e', 'E', 'p', 'P']) {
        return NumberValue::Float(float);
    }
    match (int, uint) {
        (Some(i), _) => NumberValue::Int(i),
        (None, Some(u)) => NumberValue::Uint(u),
        // Unreachable by `read_number`'s construction (a float reading of
        // an integer spelling is refused), kept total for safety.
        (None, None) => NumberValue::Float(float),
    }
}

/// Go's `underscoreOK`: underscores only between digits, or after a base
/// prefix.
fn underscore_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1] | 0x20, b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1] | 0x20 == b'x';
    }
    for &c in &b[i..] {
        if c.is_ascii_digit() || hex && c.is_ascii_hexdigit() {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

/// `strconv.ParseUint(s, 0, 64)`.
fn parse_uint(s0: &str) -> Result<u64, NumErr> {
    let b = s0.as_bytes();
    if b.is_empty() {
        return Err(NumErr::Syntax);
    }
    let (base, digits): (u32, &[u8]) = if b[0] == b'0' && b.len() >= 3 {
        match b[1] | 0x20 {
            b'b' => (2, &b[2..]),
            b'o' => (8, &b[2..]),
            b'x' => (16, &b[2..]),
            _ => (8, &b[1..]),
        }
    } else if b[0] == b'0' {
        (8, &b[1..])
    } else {
        (10, b)
    };
    let mut underscores = false;
    let mut n: u64 = 0;
    for &c in digits {
        if c == b'_' {
            underscores = true;
            continue;
        }
        let d = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            c if c.is_ascii_alphabetic() => u32::from((c | 0x20) - b'a') + 10,
            _ => return Err(NumErr::Syntax),
        };
        if d >= base {
            return Err(NumErr::Syntax);
        }
        n = n
            .checked_mul(u64::from(base))
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or(NumErr::Range)?;
    }
    if underscores && !underscore_ok(s0) {
        return Err(NumErr::Syntax);
    }
    Ok(n)
}

/// `strconv.ParseInt(s, 0, 64)`.
fn parse_int(s0: &str) -> Result<i64, NumErr> {
    let (neg, s) = match s0.as_bytes().first() {
        Some(b'+') => (false, &s0[1..]),
        Some(b'-') => (true, &s0[1..]),
        _ => (false, s0),
    };
    let un = parse_uint(s)?;
    if neg {
        if un > 1 << 63 {
            return Err(NumErr::Range);
        }
        Ok((un as i64).wrapping_neg())
    } else {
        i64::try_from(un).map_err(|_| NumErr::Range)
    }
}

/// `strconv.ParseFloat(s, 64)` for the spellings a template can lex (no
/// `inf` or `nan`): decimal, and hexadecimal with a mandatory `p` exponent.
fn parse_float(s: &str) -> Result<f64, NumErr> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let hex = body.len() > 2 && body.starts_with('0') && body.as_bytes()[1] | 0x20 == b'x';
    if s.contains('_') && !underscore_ok(s) {
        return Err(NumErr::Syntax);
    }
    let magnitude = if hex {
        parse_hex_float(&body[2..])?
    } else {
        parse_decimal_float(body)?
    };
    if magnitude.is_infinite() {
        return Err(NumErr::Range);
    }
    Ok(if neg { -magnitude } else { magnitude })
}

/// Splits `digits[.digits][<exp>[+-]digits]` (underscores allowed) into
/// mantissa and exponent text, checking the shape Go's `readFloat` accepts.
fn split_float(
    s: &str,
    is_digit: fn(u8) -> bool,
    exp_char: u8,
) -> Result<(&str, Option<&str>), NumErr> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut saw_dot = false;
    let mut saw_digits = false;
    while i < b.len() {
        match b[i] {
            b'_' => {}
            b'.' if !saw_dot => saw_dot = true,
            c if is_digit(c) => saw_digits = true,
            _ => break,
        }
        i += 1;
    }
    if !saw_digits {
        return Err(NumErr::Syntax);
    }
    let mantissa = &s[..i];
    if i == b.len() {
        return Ok((mantissa, None));
    }
    if b[i] | 0x20 != exp_char {
        return Err(NumErr::Syntax);
    }
    let exp = &s[i + 1..];
    let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
    if !digits.starts_with(|c: char| c.is_ascii_digit())
        || !digits.bytes().all(|c| c.is_ascii_digit() || c == b'_')
    {
        return Err(NumErr::Syntax);
    }
    Ok((mantissa, Some(exp)))
}

fn parse_decimal_float(s: &str) -> Result<f64, NumErr> {
    split_float(s, |c| c.is_ascii_digit(), b'e')?;
    // The shape is Go's; Rust's reading of that shape is correctly rounded,
    // as Go's is, so the values agree bit for bit.
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    clean.parse::<f64>().map_err(|_| NumErr::Syntax)
}

/// A hexadecimal float after its `0x`: hex digits with an optional point,
/// then a binary exponent `p±N` (required), rounded to nearest even.
fn parse_hex_float(s: &str) -> Result<f64, NumErr> {
    let (mantissa, exp) = split_float(s, |c| c.is_ascii_hexdigit(), b'p')?;
    let Some(exp) = exp else {
        return Err(NumErr::Syntax);
    };
    let mut mant: u64 = 0;
    let mut sticky = false;
    let mut shift: i64 = 0;
    let mut after_dot = false;
    for c in mantissa.bytes() {
        let d = match c {
            b'.' => {
                after_dot = true;
                continue;
            }
            b'_' => continue,
            c => u64::from(char::from(c).to_digit(16).unwrap_or(0)),
        };
        if mant >> 60 == 0 {
            mant = mant * 16 + d;
            if after_dot {
                shift -= 4;
            }
        } else {
            sticky |= d != 0;
            if !after_dot {
                shift += 4;
            }
        }
    }
    let (negative_exp, digits) = match exp.as_bytes().first() {
        Some(b'-') => (true, &exp[1..]),
        Some(b'+') => (false, &exp[1..]),
        _ => (false, exp),
    };
    // Beyond this the value is zero or infinite anyway; capping keeps the
    // arithmetic in range, as Go's reader does.
    let e = digits
        .bytes()
        .filter(u8::is_ascii_digit)
        .fold(0i64, |acc, c| (acc * 10 + i64::from(c - b'0')).min(100_000));
    shift += if negative_exp { -e } else { e };
    Ok(round_binary(mant, sticky, shift))
}

/// The f64 nearest to `(mant + sticky bits) × 2^exp`, ties to even;
/// infinity when too large.
fn round_binary(mant: u64, sticky: bool, exp: i64) -> f64 {
    if mant == 0 {
        return 0.0;
    }
    let lz = i64::from(mant.leading_zeros());
    let mant = mant << lz;
    let exp = exp - lz;
    // The value is in [2^top, 2^(top+1)).
    let top = exp + 63;
    // Keep 53 bits, fewer for subnormals (exponent below -1022).
    let drop = if top >= -1022 { 11 } else { 11 + (-1022 - top) };
    if drop > 64 {
        return 0.0;
    }
    let (kept, rem, half) = if drop == 64 {
        (0u64, mant, 1u64 << 63)
    } else {
        (
            mant >> drop,
            mant & ((1u64 << drop) - 1),
            1u64 << (drop - 1),
        )
    };
    let round_up = rem > half || rem == half && (sticky || kept & 1 == 1);
    let mut kept = kept + u64::from(round_up);
    let mut e = exp + drop;
    if kept == 1 << 53 {
        kept >>= 1;
        e += 1;
    }
    if kept < 1 << 52 {
        // Subnormal (e is -1074 here): the bits are the mantissa itself.
        return f64::from_bits(kept);
    }
    let biased = e + 1075;
    if biased >= 2047 {
        return f64::INFINITY;
    }
    f64::from_bits(((biased as u64) << 52) | (kept & ((1u64 << 52) - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(text: &str) -> Option<i64> {
        read_number(text).ok().and_then(|r| r.int)
    }

    #[test]
    fn integers_in_every_base() {
        let cases = [
            ("42", 42),
            ("-3", -3),
            ("+7", 7),
            ("0x1F", 31),
            ("0X1f", 31),
            ("0o17", 15),
            ("017", 15),
            ("0b101", 5),
            ("1_000_000", 1_000_000),
            ("0x_ff", 255),
            ("0_7", 7),
            ("-0x10", -16),
            ("0", 0),
            ("-0", 0),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ];
        for (text, want) in cases {
            let r = read_number(text).expect(text);
            assert_eq!(r.int, Some(want), "{text}");
            assert_eq!(r.float, Some(want as f64), "{text}");
        }
        assert_eq!(read_number("-0").map(|r| r.uint), Ok(Some(0)));
        assert_eq!(read_number("-3").map(|r| r.uint), Ok(None));
    }

    #[test]
    fn untyped_values_follow_ideal_constant() {
        let cases = [
            ("42", NumberValue::Int(42)),
            ("1.5", NumberValue::Float(1.5)),
            ("1.0", NumberValue::Float(1.0)),
            ("1e3", NumberValue::Float(1000.0)),
            ("0x1e", NumberValue::Int(30)),
            ("-0x1e", NumberValue::Float(-30.0)),
            ("0x1p4", NumberValue::Float(16.0)),
            (".5", NumberValue::Float(0.5)),
            ("1_000.5", NumberValue::Float(1000.5)),
            ("18446744073709551615", NumberValue::Uint(u64::MAX)),
        ];
        for (text, want) in cases {
            assert_eq!(read_number(text).map(|r| r.value), Ok(want), "{text}");
        }
    }

    #[test]
    fn integral_floats_also_read_as_ints() {
        assert_eq!(int("1.0"), Some(1));
        assert_eq!(int("1e3"), Some(1000));
        assert_eq!(int("1.5"), None);
        assert_eq!(int("-2.0"), Some(-2));
        assert_eq!(read_number("-2.0").map(|r| r.uint), Ok(None));
        assert_eq!(read_number("1e19").map(|r| r.int), Ok(None));
        assert_eq!(
            read_number("1e19").map(|r| r.uint),
            Ok(Some(10_000_000_000_000_000_000))
        );
    }

    #[test]
    fn hex_floats_round_like_go() {
        let cases = [
            ("0x1.8p1", 3.0),
            ("0x.8p1", 1.0),
            ("0x1.p1", 2.0),
            ("0x1p-2", 0.25),
            ("0x1p-1074", 5e-324),
            ("0x1p-2000", 0.0),
            ("0x1.fffffffffffffp1023", f64::MAX),
            ("0x10000000000000001p0", 18446744073709551616.0),
            ("0x1.00000000000008p0", 1.0),
            ("0x1.00000000000018p0", 1.0000000000000004),
            ("0x1.000000000000081p0", 1.0000000000000002),
        ];
        for (text, want) in cases {
            assert_eq!(parse_float(text), Ok(want), "{text}");
        }
        assert_eq!(parse_float("0x1p1024"), Err(NumErr::Range));
        assert_eq!(parse_float("0x1.fffffffffffff8p1023"), Err(NumErr::Range));
        assert_eq!(parse_float("0x1"), Err(NumErr::Syntax));
        assert_eq!(parse_float("1e400"), Err(NumErr::Range));
        assert_eq!(parse_float("1e-400"), Ok(0.0));
    }

    #[test]
    fn go_errors_for_bad_numbers() {
        let go = |text: &str| match read_number(text) {
            Err(NumberError::Go(message)) => message,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(go("089"), r#"integer overflow: "089""#);
        assert_eq!(
            go("99999999999999999999"),
            r#"integer overflow: "99999999999999999999""#
        );
        assert_eq!(go("1__0"), r#"illegal number syntax: "1__0""#);
        assert_eq!(go("1_"), r#"illegal number syntax: "1_""#);
        assert_eq!(go("1_.5"), r#"illegal number syntax: "1_.5""#);
        assert_eq!(go("-"), r#"illegal number syntax: "-""#);
        assert_eq!(go("0x"), r#"illegal number syntax: "0x""#);
        assert_eq!(go("0x1.8"), r#"illegal number syntax: "0x1.8""#);
        assert_eq!(go("1e"), r#"illegal number syntax: "1e""#);
        assert_eq!(go("1e400"), r#"illegal number syntax: "1e400""#);
        assert_eq!(go("0b102"), r#"illegal number syntax: "0b102""#);
        assert_eq!(read_number("1i"), Err(NumberError::Imaginary));
        assert_eq!(
            read_number("1_i"),
            Err(NumberError::Go(
                r#"illegal number syntax: "1_i""#.to_string()
            ))
        );
        assert_eq!(read_number("0i"), Err(NumberError::Imaginary));
    }

    #[test]
    fn complex_literals_are_checked_as_fmt_scans_them() {
        for ok in [
            "1+2i",
            "1.5-0.5i",
            "0x1p1+1i",
            "1e3+1e-3i",
            "1p2+3i",
            "1p+2+3i",
        ] {
            assert_eq!(check_complex(ok), Ok(()), "{ok}");
        }
        let cases = [
            (
                "0x2_87+Ei",
                r#"strconv.ParseFloat: parsing "0x2_87": invalid syntax"#,
            ),
            (
                "--15i",
                r#"strconv.ParseFloat: parsing "-": invalid syntax"#,
            ),
            (
                "08+_i",
                r#"strconv.ParseFloat: parsing "+_": invalid syntax"#,
            ),
            (
                "+i+1i",
                r#"strconv.ParseFloat: parsing "+i": invalid syntax"#,
            ),
            ("1i+2i", "syntax error scanning complex number"),
            ("1p+2i", "syntax error scanning complex number"),
            ("1p_2+3i", r#"strconv.Atoi: parsing "1p_2": invalid syntax"#),
            (
                "-1+-2i",
                r#"strconv.ParseFloat: parsing "+-2": invalid syntax"#,
            ),
            (
                "1e400+1i",
                r#"strconv.ParseFloat: parsing "1e400": value out of range"#,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(check_complex(text), Err(want.to_string()), "{text}");
        }
    }
}

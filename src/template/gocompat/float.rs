//! Go's `strconv.AppendFloat` for `float64` in the formats `fmt` uses: `e`,
//! `E`, `f`, `g`, `G` with a precision or the shortest one, and `b`.
//!
//! Both Go and Rust produce exact decimal digits (shortest round-trip ones,
//! or correctly rounded ones for a precision), so the digits are taken from
//! Rust's formatter and laid out by Go's rules (`formatDigits`, `fmtE`,
//! `fmtF`): where `%g` switches to exponent form, the two-digit exponent,
//! trailing zeros.

/// Decimal digits without trailing zeros, and the decimal point's position:
/// the value is `0.d1d2d3… × 10^dp`. Zero has no digits.
struct Digits {
    digits: Vec<u8>,
    dp: i32,
}

/// Splits Rust's `{:e}` output (`d.ddde±x`) into [`Digits`].
fn parse_exp_form(text: &str) -> Digits {
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits.is_empty() {
        return Digits { digits, dp: 0 };
    }
    Digits {
        digits,
        dp: exponent + 1,
    }
}

/// The shortest digits that read back as `v` (`v` finite, not negative).
fn shortest(v: f64) -> Digits {
    parse_exp_form(&format!("{v:e}"))
}

/// `n` significant digits, correctly rounded (`v` finite, not negative).
fn fixed(v: f64, n: usize) -> Digits {
    parse_exp_form(&format!("{:.*e}", n.saturating_sub(1), v))
}

fn fmt_e(out: &mut String, d: &Digits, prec: usize, letter: char) {
    out.push(d.digits.first().map_or('0', |&c| c as char));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(d.digits.get(i).map_or('0', |&c| c as char));
        }
    }
    out.push(letter);
    let exp = if d.digits.is_empty() { 0 } else { d.dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let exp = exp.unsigned_abs();
    if exp < 10 {
        out.push('0');
    }
    out.push_str(&exp.to_string());
}

fn fmt_f(out: &mut String, d: &Digits, prec: usize) {
    if d.dp > 0 {
        for i in 0..d.dp as usize {
            out.push(d.digits.get(i).map_or('0', |&c| c as char));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec {
            let j = d.dp as i64 + i as i64;
            let c = usize::try_from(j)
                .ok()
                .and_then(|j| d.digits.get(j))
                .map_or('0', |&c| c as char);
            out.push(c);
        }
    }
}

/// Go's hexadecimal float (`strconv.FormatFloat(a, 'x', prec, 64)`) of a
/// non-negative finite `a`: `0x1.ep+04` for 30; `prec` < 0 is the shortest.
fn hex_float(a: f64, format: char, prec: i64) -> String {
    let bits = a.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i64;
    let mut mant = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        exp = 1;
    } else {
        mant |= 1u64 << 52;
    }
    exp -= 1023;
    if mant == 0 {
        exp = 0;
    }
    // The leading 1 (if any) at bit 60.
    mant <<= 60 - 52;
    while mant != 0 && mant & (1 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    if (0..15).contains(&prec) {
        let shift = (prec * 4) as u32;
        let extra = (mant << shift) & ((1u64 << 60) - 1);
        mant >>= 60 - shift;
        if extra | (mant & 1) > 1 << 59 {
            mant += 1;
        }
        mant <<= 60 - shift;
        if mant & (1 << 61) != 0 {
            mant >>= 1;
            exp += 1;
        }
    }
    let digits: &[u8; 16] = if format == 'X' {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = String::from(if format == 'X' { "0X" } else { "0x" });
    out.push(if (mant >> 60) & 1 == 1 { '1' } else { '0' });
    mant <<= 4;
    let fraction_digits = if prec < 0 {
        (mant != 0).then_some(usize::MAX)
    } else {
        usize::try_from(prec).ok().filter(|&p| p > 0)
    };
    if let Some(count) = fraction_digits {
        out.push('.');
        let mut written = 0;
        while written < count && (prec >= 0 || mant != 0) {
            out.push(digits[((mant >> 60) & 15) as usize] as char);
            mant <<= 4;
            written += 1;
        }
    }
    out.push(if format == 'X' { 'P' } else { 'p' });
    out.push(if exp < 0 { '-' } else { '+' });
    let exp = exp.unsigned_abs();
    if exp < 10 {
        out.push('0');
    }
    out.push_str(&exp.to_string());
    out
}

/// `strconv.FormatFloat(v, format, prec, 64)`; `prec` < 0 asks for the
/// shortest representation. Formats other than `e E f F g G b x X` give
/// Go's `%` + format.
pub fn format_float(v: f64, format: char, prec: i64) -> String {
    let mut out = String::new();
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if v.is_sign_negative() {
        out.push('-');
    }
    let a = v.abs();
    if format == 'b' {
        let bits = a.to_bits();
        let mut exp = ((bits >> 52) & 0x7ff) as i64;
        let mut mant = bits & ((1u64 << 52) - 1);
        if exp == 0 {
            exp = 1;
        } else {
            mant |= 1u64 << 52;
        }
        exp -= 1023 + 52;
        out.push_str(&format!(
            "{mant}p{}{}",
            if exp >= 0 { "+" } else { "" },
            exp
        ));
        return out;
    }
    if format == 'x' || format == 'X' {
        out.push_str(&hex_float(a, format, prec));
        return out;
    }
    let shortest_wanted = prec < 0;
    let prec_u = usize::try_from(prec).unwrap_or(0);
    match format {
        'e' | 'E' => {
            let d = if shortest_wanted {
                shortest(a)
            } else {
                fixed(a, prec_u + 1)
            };
            let p = if shortest_wanted {
                d.digits.len().saturating_sub(1)
            } else {
                prec_u
            };
            fmt_e(&mut out, &d, p, format);
        }
        'f' | 'F' => {
            if shortest_wanted {
                let d = shortest(a);
                let p = (d.digits.len() as i64 - d.dp as i64).max(0) as usize;
                fmt_f(&mut out, &d, p);
            } else {
                // Rust rounds exactly (half to even on the exact binary
                // value), as Go's big-decimal path for 'f' does.
                out.push_str(&format!("{a:.prec_u$}"));
            }
        }
        'g' | 'G' => {
            let (d, mut p) = if shortest_wanted {
                let d = shortest(a);
                let n = d.digits.len();
                (d, n)
            } else {
                let p = prec_u.max(1);
                (fixed(a, p), p)
            };
            let nd = d.digits.len();
            let mut eprec = p as i64;
            if eprec > nd as i64 && nd as i64 >= d.dp as i64 {
                eprec = nd as i64;
            }
            if shortest_wanted {
                eprec = 6;
            }
            let exp = d.dp as i64 - 1;
            let letter = if format == 'g' { 'e' } else { 'E' };
            if exp < -4 || exp >= eprec {
                if p > nd {
                    p = nd;
                }
                fmt_e(&mut out, &d, p.saturating_sub(1), letter);
            } else {
                if p as i64 > d.dp as i64 {
                    p = nd;
                }
                fmt_f(&mut out, &d, (p as i64 - d.dp as i64).max(0) as usize);
            }
        }
        other => {
            out.clear();
            out.push('%');
            out.push(other);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::format_float;

    // Expected strings from Go 1.19's strconv.FormatFloat(v, f, prec, 64).
    #[test]
    fn shortest_g_switches_to_exponent_like_go() {
        let g = |v: f64| format_float(v, 'g', -1);
        assert_eq!(g(80.0), "80");
        assert_eq!(g(1e6), "1e+06");
        assert_eq!(g(100000.0), "100000");
        assert_eq!(g(1.5e-5), "1.5e-05");
        assert_eq!(g(0.0001), "0.0001");
        assert_eq!(g(123456789.0), "1.23456789e+08");
        assert_eq!(g(1e21), "1e+21");
        assert_eq!(g(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(g(-0.0), "-0");
        assert_eq!(g(0.0), "0");
        assert_eq!(g(1e100), "1e+100");
        assert_eq!(g(5e-324), "5e-324");
        assert_eq!(g(f64::INFINITY), "+Inf");
        assert_eq!(g(f64::NAN), "NaN");
    }

    #[test]
    fn precisions_like_go() {
        assert_eq!(format_float(1.23456, 'f', 2), "1.23");
        assert_eq!(format_float(2.5, 'f', 0), "2");
        assert_eq!(format_float(-0.0, 'f', 1), "-0.0");
        assert_eq!(format_float(123456.789, 'e', 6), "1.234568e+05");
        assert_eq!(format_float(0.000012345, 'E', 6), "1.234500E-05");
        assert_eq!(format_float(0.0, 'e', 2), "0.00e+00");
        assert_eq!(format_float(1.0, 'g', 3), "1");
        assert_eq!(format_float(1.5, 'g', 3), "1.5");
        assert_eq!(format_float(1234.5678, 'g', 3), "1.23e+03");
        assert_eq!(format_float(1234.5678, 'g', 0), "1e+03");
        assert_eq!(format_float(0.00001234, 'G', 2), "1.2E-05");
        assert_eq!(format_float(100.0, 'g', 3), "100");
        assert_eq!(format_float(1e-7, 'G', -1), "1E-07");
        assert_eq!(format_float(1.0, 'b', -1), "4503599627370496p-52");
    }

    #[test]
    fn hexadecimal_floats_like_go() {
        // Expected strings from Go 1.19's strconv.FormatFloat(v, 'x', p, 64).
        assert_eq!(format_float(30.0, 'x', -1), "0x1.ep+04");
        assert_eq!(format_float(1.0, 'x', -1), "0x1p+00");
        assert_eq!(format_float(0.0, 'x', -1), "0x0p+00");
        assert_eq!(format_float(-0.1, 'X', -1), "-0X1.999999999999AP-04");
        assert_eq!(format_float(1e300, 'x', -1), "0x1.7e43c8800759cp+996");
        assert_eq!(format_float(30.0, 'x', 3), "0x1.e00p+04");
        assert_eq!(format_float(1.5, 'x', 0), "0x1p+01");
        assert_eq!(format_float(5e-324, 'x', -1), "0x1p-1074");
        // Through printf's flags (Go 1.19's fmt.Printf).
        let args: Vec<tera::Value> = [30.0, 1.5, 2.0, 1.0, 3.0]
            .into_iter()
            .map(tera::Value::from)
            .collect();
        assert_eq!(
            crate::template::gocompat::fmt::sprintf("%x|%X|%8.2x|%#x|%+x", &args),
            "0x1.ep+04|0X1.8P+00|0x1.00p+01|0x1.0000p+00|+0x1.8p+01"
        );
    }
}

//! A detection view of text that hides secrets from the rules: invisible
//! format characters (`ghp_\u{200b}…`), fullwidth letters
//! (`ｐａｓｓｗｏｒｄ=`), Cyrillic or Greek lookalikes inside a Latin word
//! (`pаssword=` with a Cyrillic `а`), percent-encoded key/value syntax
//! (`password%3DS3cr3t`, `%22token%22%3A%22…%22`), escaped ASCII
//! (`\u0070assword`, `pass&#119;ord`), and values split by a
//! line continuation or a string concatenation (`"sk-" + "proj-…"`).
//!
//! [`view`] returns the normalised text and, for each of its bytes, the
//! byte of the original it came from, so spans found in the view redact
//! the original. Text with none of these (nearly all text: the check is a
//! byte scan) gets no view and costs nothing more.

/// The normalised text and `map[i]`: the original offset of its byte `i`
/// (`map[len]` is the original's length).
pub struct View {
    /// Text the rules run on.
    pub text: String,
    /// Original byte offset of every byte of `text`, plus one past the end.
    pub map: Vec<usize>,
}

/// Zero-width and other invisible format characters.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}' | '\u{034f}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}' | '\u{feff}'
    )
}

/// The ASCII letter a Cyrillic or Greek lookalike stands for.
fn confusable(c: char) -> Option<char> {
    Some(match c {
        'а' => 'a',
        'е' => 'e',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'у' => 'y',
        'х' => 'x',
        'ѕ' => 's',
        'і' => 'i',
        'ј' => 'j',
        'ԁ' => 'd',
        'ԛ' => 'q',
        'ԝ' => 'w',
        'һ' => 'h',
        'А' => 'A',
        'В' => 'B',
        'Е' => 'E',
        'К' => 'K',
        'М' => 'M',
        'Н' => 'H',
        'О' => 'O',
        'Р' => 'P',
        'С' => 'C',
        'Т' => 'T',
        'Х' => 'X',
        'Ѕ' => 'S',
        'І' => 'I',
        'Ј' => 'J',
        'ο' => 'o',
        'ι' => 'i',
        'ν' => 'v',
        'ρ' => 'p',
        'Α' => 'A',
        'Β' => 'B',
        'Ε' => 'E',
        'Ζ' => 'Z',
        'Η' => 'H',
        'Ι' => 'I',
        'Κ' => 'K',
        'Μ' => 'M',
        'Ν' => 'N',
        'Ο' => 'O',
        'Ρ' => 'P',
        'Τ' => 'T',
        'Υ' => 'Y',
        'Χ' => 'X',
        _ => return None,
    })
}

/// Fullwidth ASCII (`ｐａｓｓ`, `＝`) as ASCII.
fn fullwidth(c: char) -> Option<char> {
    let u = c as u32;
    (0xff01..=0xff5e)
        .contains(&u)
        .then(|| char::from_u32(u - 0xfee0))
        .flatten()
}

/// Whether `s` at `i` is `%XX` of a byte that is key/value syntax or a
/// printable ASCII character next to such syntax.
fn percent_byte(b: &[u8], i: usize) -> Option<u8> {
    if b.get(i) != Some(&b'%') {
        return None;
    }
    let hex = |c: u8| (c as char).to_digit(16);
    let v = hex(*b.get(i + 1)?)? * 16 + hex(*b.get(i + 2)?)?;
    let v = u8::try_from(v).ok()?;
    (0x20..0x7f).contains(&v).then_some(v)
}

/// An escaped ASCII character at `i`: JSON/JS `\u0070`, HTML `&#112;` or
/// `&#x70;`. Returns the character and the escape's length.
fn escaped_ascii(b: &[u8], i: usize) -> Option<(u8, usize)> {
    let digits = |from: usize, radix: u32, max: usize| {
        let n = b
            .get(from..)?
            .iter()
            .take(max)
            .take_while(|c| (**c as char).is_digit(radix))
            .count();
        let v = std::str::from_utf8(&b[from..from + n]).ok()?;
        Some((u32::from_str_radix(v, radix).ok()?, n))
    };
    let (v, len) = match (b.get(i), b.get(i + 1), b.get(i + 2)) {
        (Some(b'\\'), Some(b'u'), _) => {
            let (v, n) = digits(i + 2, 16, 4)?;
            (n == 4).then_some((v, 6))?
        }
        (Some(b'&'), Some(b'#'), Some(b'x' | b'X')) => {
            let (v, n) = digits(i + 3, 16, 6)?;
            (b.get(i + 3 + n) == Some(&b';') && n > 0).then_some((v, n + 4))?
        }
        (Some(b'&'), Some(b'#'), _) => {
            let (v, n) = digits(i + 2, 10, 7)?;
            (b.get(i + 2 + n) == Some(&b';') && n > 0).then_some((v, n + 3))?
        }
        _ => return None,
    };
    let v = u8::try_from(v).ok()?;
    v.is_ascii_graphic().then_some((v, len))
}

/// Encoded syntax worth decoding for: `=`, `"`, `:`, `&`, `'`, `{`, `}`.
fn has_encoded_syntax(b: &[u8]) -> bool {
    // From `%` to `%` (memchr): a window over every byte of a message
    // that has one `%` cost about 6 instructions a byte.
    memchr::memchr_iter(b'%', b).any(|i| {
        matches!(
            (
                b.get(i + 1).map(u8::to_ascii_uppercase),
                b.get(i + 2).map(u8::to_ascii_uppercase)
            ),
            (Some(b'3'), Some(b'D' | b'A')) | (Some(b'2'), Some(b'2' | b'7')) | (Some(b'7'), Some(b'B'))
        )
    })
}

/// Whether the word around `i` (letters only) has ASCII letters: a
/// lookalike is only suspicious inside a Latin word.
fn latin_word_around(text: &str, i: usize) -> bool {
    let before = text[..i].chars().rev().take_while(|c| c.is_alphabetic());
    let after = text[i..].chars().skip(1).take_while(|c| c.is_alphabetic());
    before.chain(after).any(|c| c.is_ascii_alphabetic())
}

/// The length of a joint at `i` that splits one value in two: a line
/// continuation (`\` + line break) or the end of a string literal
/// concatenated with the next (`" + "`, `' . '`, `"\n  "`), so
/// `"sk-" + "proj-…"` and `TOKEN=abc\<newline>def` are seen whole.
fn joint_len(b: &[u8], i: usize) -> usize {
    match b[i] {
        b'\\' => match (b.get(i + 1), b.get(i + 2)) {
            (Some(b'\n'), _) => 2,
            (Some(b'\r'), Some(b'\n')) => 3,
            _ => 0,
        },
        q @ (b'"' | b'\'') => {
            let mut j = i + 1;
            // An operator, or a shell line continuation between two
            // adjacent strings.
            let (mut op, mut cont) = (false, false);
            // A blank line (two breaks with nothing but spaces between)
            // ends the expression: a string closing one paragraph is not
            // joined to one opening the next (a `.env` value above a JSON
            // document).
            let mut breaks = 0;
            while let Some(&c) = b.get(j) {
                match c {
                    b'\n' if breaks == 1 => return 0,
                    b'\n' => breaks += 1,
                    b' ' | b'\t' | b'\r' => {}
                    b'\\' => {
                        cont = true;
                        breaks = 0;
                    }
                    b'+' | b'.' if !op => {
                        op = true;
                        breaks = 0;
                    }
                    _ => break,
                }
                j += 1;
            }
            // Adjacent literals (`"sk-" "proj-…"`, Python and C) join too.
            let adjacent = j > i + 1;
            if (op || cont || adjacent) && b.get(j) == Some(&q) {
                j + 1 - i
            } else {
                0
            }
        }
        _ => 0,
    }
}

/// Whether the view changes the non-ASCII character `c` at `i`.
fn changed_char(text: &str, i: usize, c: char) -> bool {
    invisible(c) || fullwidth(c).is_some() || (confusable(c).is_some() && latin_word_around(text, i))
}

/// The sorted offsets of everything the view would change in `text`.
///
/// Every message is scanned, so each kind of change is looked for with
/// the fastest search that finds it: `memchr` for the bytes that start a
/// joint or an escape, and characters only in the 64-byte blocks that
/// hold a non-ASCII byte (a byte-by-byte loop cost about 10 instructions
/// a byte, the largest fixed cost of a message after the anchor scan).
fn changes(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut at: Vec<usize> = memchr::memchr3_iter(b'\\', b'"', b'\'', b)
        .filter(|&i| match b[i] {
            b'\\' => joint_len(b, i) > 0 || escaped_ascii(b, i).is_some(),
            // A quote joins the next literal only across blanks, an
            // operator or a continuation: `"key": ` and `"value",`, the
            // quotes of JSON, are ruled out by the byte after them.
            _ => {
                matches!(
                    b.get(i + 1),
                    Some(b' ' | b'\t' | b'\r' | b'\n' | b'\\' | b'+' | b'.')
                ) && joint_len(b, i) > 0
            }
        })
        .collect();
    let percent = has_encoded_syntax(b);
    at.extend(memchr::memchr2_iter(b'&', b'%', b).filter(|&i| match b[i] {
        b'&' => escaped_ascii(b, i).is_some(),
        _ => percent && percent_byte(b, i).is_some(),
    }));
    // Characters, 64 bytes at a time: a block of ASCII (nearly all of any
    // text) is skipped with one word-at-a-time test.
    let mut i = 0;
    while i < b.len() {
        let mut end = (i + 64).min(b.len());
        if b[i..end].is_ascii() {
            i = end;
            continue;
        }
        while !text.is_char_boundary(end) {
            end += 1;
        }
        at.extend(
            text[i..end]
                .char_indices()
                .filter(|&(k, c)| !c.is_ascii() && changed_char(text, i + k, c))
                .map(|(k, _)| i + k),
        );
        i = end;
    }
    at.sort_unstable();
    at
}

/// How far around a change the view reaches (bytes, snapped to lines):
/// enough for a key, its value and the lines a rule reads around them.
const REACH: usize = 512;

/// Detection views of the regions of `text` that have something the view
/// changes, with each region's offset in `text`. Only those regions are
/// scanned a second time, so one line continuation in a 50 KB message
/// costs a few kilobytes of rescanning, not 50.
pub fn views(text: &str) -> Vec<(usize, View)> {
    let mut regions: Vec<(usize, usize)> = Vec::new();
    let floor = |mut i: usize| {
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    for i in changes(text) {
        // From the start of the line `REACH` bytes before to the end of
        // the line `REACH` bytes after.
        let back = floor(i.saturating_sub(REACH));
        let lo = if back == 0 {
            0
        } else {
            text[..back].rfind('\n').map_or(0, |p| p + 1)
        };
        let ahead = floor((i + REACH).min(text.len()));
        let hi = text[ahead..].find('\n').map_or(text.len(), |p| ahead + p);
        match regions.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => regions.push((lo, hi)),
        }
    }
    regions
        .into_iter()
        .filter_map(|(lo, hi)| view(&text[lo..hi]).map(|v| (lo, v)))
        .collect()
}

/// The detection view of `text`, or `None` when it would equal `text`.
pub fn view(text: &str) -> Option<View> {
    let b = text.as_bytes();
    let non_ascii = b.iter().any(|&c| c >= 0x80);
    let percent = has_encoded_syntax(b);
    let joints = (0..b.len()).any(|i| matches!(b[i], b'\\' | b'"' | b'\'') && joint_len(b, i) > 0);
    // Non-ASCII text (prose in any language, `—`, `«»`) needs a view only
    // when it has a character the view changes.
    let suspicious = non_ascii
        && text
            .char_indices()
            .any(|(i, c)| !c.is_ascii() && changed_char(text, i, c));
    let escapes = (0..b.len()).any(|i| matches!(b[i], b'\\' | b'&') && escaped_ascii(b, i).is_some());
    if !suspicious && !percent && !joints && !escapes {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut map = Vec::with_capacity(text.len() + 1);
    let mut changed = false;
    let mut i = 0;
    while i < text.len() {
        // Nearly every byte is plain ASCII that no joint, escape or
        // lookalike can start: copied as is, without asking each test
        // below (every one of them would pass it through unchanged).
        let c = b[i];
        if c < 0x80 && !matches!(c, b'\\' | b'"' | b'\'' | b'&' | b'%') {
            out.push(char::from(c));
            map.push(i);
            i += 1;
            continue;
        }
        if joints {
            let skip = joint_len(b, i);
            if skip > 0 {
                i += skip;
                changed = true;
                continue;
            }
        }
        if escapes && let Some((v, len)) = escaped_ascii(b, i) {
            out.push(v as char);
            map.push(i);
            i += len;
            changed = true;
            continue;
        }
        if percent && let Some(v) = percent_byte(b, i) {
            out.push(v as char);
            map.push(i);
            i += 3;
            changed = true;
            continue;
        }
        let c = text[i..].chars().next().expect("in bounds");
        let len = c.len_utf8();
        let replacement = if c.is_ascii() {
            Some(c)
        } else if invisible(c) {
            None
        } else if let Some(a) = fullwidth(c) {
            Some(a)
        } else if let Some(a) = confusable(c).filter(|_| latin_word_around(text, i)) {
            Some(a)
        } else {
            out.push(c);
            map.extend(i..i + len);
            i += len;
            continue;
        };
        match replacement {
            Some(a) => {
                changed |= !c.is_ascii();
                out.push(a);
                map.push(i);
            }
            None => changed = true,
        }
        i += len;
    }
    map.push(text.len());
    changed.then_some(View { text: out, map })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`changes`] against the plain byte-by-byte scan it replaced, on
    /// texts mixing every kind of change at every offset around its
    /// 64-byte blocks.
    #[test]
    fn changes_match_a_byte_by_byte_scan() {
        fn reference(text: &str) -> Vec<usize> {
            let b = text.as_bytes();
            let percent = has_encoded_syntax(b);
            (0..b.len())
                .filter(|&i| match b[i] {
                    b'\\' => joint_len(b, i) > 0 || escaped_ascii(b, i).is_some(),
                    b'"' | b'\'' => joint_len(b, i) > 0,
                    b'&' => escaped_ascii(b, i).is_some(),
                    b'%' => percent && percent_byte(b, i).is_some(),
                    0x80.. => {
                        text.is_char_boundary(i) && {
                            let c = text[i..].chars().next().expect("in bounds");
                            changed_char(text, i, c)
                        }
                    }
                    _ => false,
                })
                .collect()
        }
        let pieces = [
            "a",
            "pаss",
            "\u{200b}",
            "ｐ",
            "é",
            "пароль",
            "\"x\" + \"y\"",
            "'a'\n'b'",
            "\\\n",
            "\\u0070",
            "&#61;",
            "&amp;",
            "%3D",
            "%41",
            "%zz",
            " ",
            "\n",
            "—",
            "密码",
            "\"",
            "'",
            "x",
            "xxxxxxx",
            "0123456789abcdef",
            "0123456789abcdef0123456789abcdef",
        ];
        let mut seed: u64 = 0x5eed;
        for _ in 0..5000 {
            let mut text = String::new();
            while text.len() < 300 {
                crate::redact::tests::next_random(&mut seed);
                text.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            assert_eq!(changes(&text), reference(&text), "{text:?}");
        }
    }

    #[test]
    fn views() {
        assert!(view("plain ascii, nothing to do").is_none());
        assert!(view("пароль: ещё").is_none());
        let v = view("pаss\u{200b}word=x").expect("changed");
        assert_eq!(v.text, "password=x");
        assert_eq!(v.map[0], 0);
        assert_eq!(v.map[2], 3); // `s` after the two-byte `а`
        assert_eq!(*v.map.last().expect("end"), "pаss\u{200b}word=x".len());
        let v = view("q=%22token%22%3A%22abc%22").expect("changed");
        assert_eq!(v.text, "q=\"token\":\"abc\"");
        assert_eq!(view("ｐａｓｓ").expect("changed").text, "pass");
        assert_eq!(
            view("k = \"sk-\" + \"proj-1\"").expect("changed").text,
            "k = \"sk-proj-1\""
        );
        assert_eq!(view("T=ab\\\ncd").expect("changed").text, "T=abcd");
        assert_eq!(
            view("k = (\"sk-\"\n     \"proj-1\")").expect("changed").text,
            "k = (\"sk-proj-1\")"
        );
        // A blank line ends the expression: two paragraphs are not one value.
        assert!(view("T=\"sk-1\"\n\n  \"name\": 1").is_none());
        assert_eq!(view("\\u0070w&#61;&#x41;").expect("changed").text, "pw=A");
    }
}

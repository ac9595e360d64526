//! Byte offsets → 1-based line and character column, in near-constant time.
//!
//! Every node asks for its position, so counting characters from the start
//! of the line each time would make a long line (a minified JSON template)
//! quadratic. Instead: the character count up to any byte offset is the
//! offset minus the UTF-8 continuation bytes before it, and those are
//! counted once per block of [`BLOCK`] bytes up front.

use super::ast::Pos;

/// Bytes per checkpoint of the continuation-byte count.
const BLOCK: usize = 64;

pub(crate) struct LineIndex<'a> {
    src: &'a [u8],
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    /// `continuations[k]`: continuation bytes in `src[..k * BLOCK]`.
    continuations: Vec<usize>,
}

fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        let bytes = src.as_bytes();
        let line_starts = std::iter::once(0)
            .chain(src.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let mut continuations = Vec::with_capacity(bytes.len() / BLOCK + 1);
        let mut seen = 0;
        continuations.push(0);
        for block in bytes.chunks(BLOCK) {
            seen += block.iter().filter(|&&b| is_continuation(b)).count();
            continuations.push(seen);
        }
        LineIndex {
            src: bytes,
            line_starts,
            continuations,
        }
    }

    /// Characters in `src[..offset]` (offset clamped to the source).
    fn chars_before(&self, offset: usize) -> usize {
        let offset = offset.min(self.src.len());
        let block = offset / BLOCK;
        let base = self.continuations.get(block).copied().unwrap_or(0);
        let partial = self.src[block * BLOCK..offset]
            .iter()
            .filter(|&&b| is_continuation(b))
            .count();
        offset - base - partial
    }

    /// The position of a byte offset (at a character boundary).
    pub(crate) fn pos(&self, offset: usize) -> Pos {
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line.saturating_sub(1)];
        let col = self.chars_before(offset) - self.chars_before(start);
        Pos::new(line, col + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious computation, to check the fast one against.
    fn naive(src: &str, offset: usize) -> Pos {
        let before = &src[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Pos::new(line, before[line_start..].chars().count() + 1)
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let long = "é".repeat(100) + "x{{ y }}\n" + &"ab😀".repeat(50);
        for src in ["", "abc", "a\nb\n\nc", "é\nüx\n", long.as_str()] {
            let index = LineIndex::new(src);
            for (offset, _) in src.char_indices().chain(std::iter::once((src.len(), ' '))) {
                assert_eq!(index.pos(offset), naive(src, offset), "{src:?} at {offset}");
            }
        }
    }
}

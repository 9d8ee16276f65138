//! `server::log`: structured logs, one JSON object per line on stderr
//! (`{"ts_ms": 1700000000000, "level": "info", "event": "listening", ...fields}`).
//!
//! Events are rare (start, recovery, connections, rejects that close a connection, snapshots,
//! stop), never per message, so each line is formatted into a fresh `String` and written with
//! one `write_all` under the stderr lock (lines from different threads never interleave).

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// A field value.
#[derive(Clone, Copy, Debug)]
pub enum Val<'a> {
    /// A string (escaped).
    S(&'a str),
    /// An unsigned integer.
    U(u64),
    /// A boolean.
    B(bool),
    /// A float (elapsed seconds, rates).
    F(f64),
}

/// Where log lines go: stderr, or nowhere (`enabled = false`, for tests that want quiet).
#[derive(Clone, Copy, Debug)]
pub struct Log {
    /// Write lines at all.
    pub enabled: bool,
}

/// Appends `s` as a JSON string literal.
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Log {
    /// Writes one line: `level` (`info`, `warn`, `error`), `event` and the fields.
    pub fn emit(&self, level: &str, event: &str, fields: &[(&str, Val<'_>)]) {
        if !self.enabled {
            return;
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut line = String::with_capacity(128);
        let _ = write!(line, "{{\"ts_ms\": {ts}, \"level\": ");
        json_str(&mut line, level);
        line.push_str(", \"event\": ");
        json_str(&mut line, event);
        for (k, v) in fields {
            line.push_str(", ");
            json_str(&mut line, k);
            line.push_str(": ");
            match v {
                Val::S(s) => json_str(&mut line, s),
                Val::U(u) => {
                    let _ = write!(line, "{u}");
                }
                Val::B(b) => {
                    let _ = write!(line, "{b}");
                }
                Val::F(f) if f.is_finite() => {
                    let _ = write!(line, "{f}");
                }
                Val::F(_) => line.push_str("null"),
            }
        }
        line.push_str("}\n");
        let mut err = std::io::stderr().lock();
        // Nothing useful can be done when stderr is gone.
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
    }

    /// `emit("info", ..)`.
    pub fn info(&self, event: &str, fields: &[(&str, Val<'_>)]) {
        self.emit("info", event, fields);
    }

    /// `emit("warn", ..)`.
    pub fn warn(&self, event: &str, fields: &[(&str, Val<'_>)]) {
        self.emit("warn", event, fields);
    }

    /// `emit("error", ..)`.
    pub fn error(&self, event: &str, fields: &[(&str, Val<'_>)]) {
        self.emit("error", event, fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\n\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}

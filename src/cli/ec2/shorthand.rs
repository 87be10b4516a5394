//! The AWS CLI's shorthand syntax for structure arguments
//! (`Name=status,Values=available,in-use`,
//! `ResourceType=volume,Tags=[{Key=a,Value=b}]`), parsed into JSON values
//! whose scalars are strings, as awscli's ShorthandParser does; the
//! operation then reads them leniently by type.

use serde_json::{Map, Value};

/// A syntax error: what was expected, what was found, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShorthandError {
    expected: String,
    actual: String,
    input: String,
    index: usize,
}

impl std::fmt::Display for ShorthandError {
    /// `Expected: '=', received: 'EOF' for input:` then the input and a
    /// caret under the position (awscli's wording).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Expected: '{}', received: '{}' for input:\n{}\n{}^",
            self.expected,
            self.actual,
            self.input,
            " ".repeat(self.index)
        )
    }
}

/// Characters a value may start with (awscli `_START_WORD`): everything
/// visible but `"`, `'`, `,`, `=`, `[`, `{`, and whitespace.
fn start_word(c: char) -> bool {
    matches!(c, '!' | '#'..='&' | '('..='+' | '-'..='<' | '>'..='Z' | '\\'..='z' | '|'..='\u{ffff}')
}

/// Characters a first value may go on with: also whitespace, `=`, `[`,
/// `{`, but not `,`, `]` or `}`.
fn first_follow(c: char) -> bool {
    c.is_whitespace()
        || matches!(c, '!' | '#'..='&' | '('..='+' | '-'..='\\' | '^'..='|' | '~'..='\u{ffff}')
}

/// Characters a later list value may go on with: not `,` nor `=`.
fn second_follow(c: char) -> bool {
    c.is_whitespace() || matches!(c, '!' | '#'..='&' | '('..='+' | '-'..='<' | '>'..='\u{ffff}')
}

struct Parser {
    s: Vec<char>,
    i: usize,
}

type R<T> = Result<T, ShorthandError>;

impl Parser {
    fn err(&self, expected: &str, actual: &str) -> ShorthandError {
        ShorthandError {
            expected: expected.to_string(),
            actual: actual.to_string(),
            input: self.s.iter().collect(),
            index: self.i,
        }
    }

    fn eof(&self) -> bool {
        self.i >= self.s.len()
    }

    fn cur(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while self.cur().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: char, ws: bool) -> R<()> {
        if ws {
            self.ws();
        }
        match self.cur() {
            None => Err(self.err(&c.to_string(), "EOF")),
            Some(a) if a != c => Err(self.err(&c.to_string(), &a.to_string())),
            Some(_) => {
                self.i += 1;
                if ws {
                    self.ws();
                }
                Ok(())
            }
        }
    }

    fn parameter(&mut self) -> R<Value> {
        let mut m = Map::new();
        let (k, v) = self.keyval()?;
        m.insert(k, v);
        while !self.eof() {
            self.expect(',', true)?;
            let (k, v) = self.keyval()?;
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }

    fn keyval(&mut self) -> R<(String, Value)> {
        let k = self.key();
        self.expect('=', true)?;
        let v = self.values()?;
        Ok((k, v))
    }

    fn key(&mut self) -> String {
        let start = self.i;
        while self
            .cur()
            .is_some_and(|c| c.is_ascii_alphanumeric() || "-_.#/:".contains(c))
        {
            self.i += 1;
        }
        self.s[start..self.i].iter().collect()
    }

    fn values(&mut self) -> R<Value> {
        match self.cur() {
            None => Ok(Value::String(String::new())),
            Some('[') => self.explicit_list(),
            Some('{') => self.hash(),
            Some(_) => self.csv_value(),
        }
    }

    /// A word matching `start` then `follow`*, with `\,` for a comma;
    /// trailing whitespace dropped.
    fn word(&mut self, follow: fn(char) -> bool) -> Option<String> {
        let start = self.i;
        let mut out = String::new();
        let mut first = true;
        loop {
            if self.cur() == Some('\\') && self.s.get(self.i + 1) == Some(&',') {
                out.push(',');
                self.i += 2;
            } else if let Some(c) = self
                .cur()
                .filter(|c| if first { start_word(*c) } else { follow(*c) })
            {
                out.push(c);
                self.i += 1;
            } else {
                break;
            }
            first = false;
        }
        if self.i == start {
            None
        } else {
            Some(out.trim_end().to_string())
        }
    }

    fn quoted(&mut self, q: char) -> R<String> {
        let start = self.i;
        self.i += 1;
        let mut raw = String::new();
        loop {
            match self.cur() {
                None => {
                    self.i = start;
                    return Err(self.err(
                        if q == '"' {
                            "<double quoted>"
                        } else {
                            "<singled quoted>"
                        },
                        "<none>",
                    ));
                }
                Some('\\') if self.s.get(self.i + 1) == Some(&q) => {
                    raw.push('\\');
                    raw.push(q);
                    self.i += 2;
                }
                Some(c) if c == q => {
                    self.i += 1;
                    break;
                }
                Some(c) => {
                    raw.push(c);
                    self.i += 1;
                }
            }
        }
        Ok(raw
            .replace(&format!("\\{q}"), &q.to_string())
            .replace("\\\\", "\\"))
    }

    fn first_value(&mut self) -> R<String> {
        match self.cur() {
            Some(q @ ('\'' | '"')) => self.quoted(q),
            _ => Ok(self.word(first_follow).unwrap_or_default()),
        }
    }

    fn second_value(&mut self) -> R<String> {
        match self.cur() {
            Some(q @ ('\'' | '"')) => self.quoted(q),
            _ => self
                .word(second_follow)
                .ok_or_else(|| self.err("<second>", "<none>")),
        }
    }

    fn csv_value(&mut self) -> R<Value> {
        let first = self.first_value()?;
        self.ws();
        if self.cur() != Some(',') {
            return Ok(Value::String(first));
        }
        self.expect(',', true)?;
        let mut list = vec![Value::String(first.clone())];
        loop {
            let save = self.i;
            let attempt = (|| -> R<Option<String>> {
                let v = self.second_value()?;
                self.ws();
                if self.eof() {
                    return Ok(Some(v));
                }
                self.expect(',', true)?;
                list.push(Value::String(v));
                Ok(None)
            })();
            match attempt {
                Ok(Some(last)) => {
                    list.push(Value::String(last));
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    if self.eof() {
                        return Err(e);
                    }
                    // The next item is a `key=`: step back to its comma.
                    self.i = save;
                    while self.i > 0 && self.s.get(self.i) != Some(&',') {
                        self.i -= 1;
                    }
                    break;
                }
            }
        }
        if list.len() == 1 {
            return Ok(Value::String(first));
        }
        Ok(Value::Array(list))
    }

    fn explicit_list(&mut self) -> R<Value> {
        self.expect('[', true)?;
        let mut out = Vec::new();
        while self.cur() != Some(']') {
            if self.eof() {
                return Err(self.err("]", "EOF"));
            }
            out.push(self.explicit_value()?);
            self.ws();
            if self.cur() != Some(']') {
                self.expect(',', false)?;
                self.ws();
            }
        }
        self.expect(']', false)?;
        Ok(Value::Array(out))
    }

    fn explicit_value(&mut self) -> R<Value> {
        match self.cur() {
            Some('[') => self.explicit_list(),
            Some('{') => self.hash(),
            _ => Ok(Value::String(self.first_value()?)),
        }
    }

    fn hash(&mut self) -> R<Value> {
        self.expect('{', true)?;
        let mut m = Map::new();
        while self.cur() != Some('}') {
            if self.eof() {
                return Err(self.err("}", "EOF"));
            }
            let k = self.key();
            self.expect('=', true)?;
            let v = self.explicit_value()?;
            self.ws();
            if self.cur() != Some('}') {
                self.expect(',', false)?;
                self.ws();
            }
            m.insert(k, v);
        }
        self.expect('}', false)?;
        Ok(Value::Object(m))
    }
}

/// Parses one shorthand argument into an object.
pub fn parse(input: &str) -> Result<Value, ShorthandError> {
    let mut p = Parser {
        s: input.chars().collect(),
        i: 0,
    };
    p.parameter()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn forms() {
        assert_eq!(parse("a=b").unwrap(), json!({"a": "b"}));
        assert_eq!(parse("a=b,c").unwrap(), json!({"a": ["b", "c"]}));
        assert_eq!(
            parse("Name=status,Values=available,in-use").unwrap(),
            json!({"Name": "status", "Values": ["available", "in-use"]})
        );
        assert_eq!(
            parse("Name=tag:Name,Values=web").unwrap(),
            json!({"Name": "tag:Name", "Values": "web"})
        );
        assert_eq!(
            parse(
                "ResourceType=volume,Tags=[{Key=purpose,Value=production},{Key=cost,Value=cc123}]"
            )
            .unwrap(),
            json!({"ResourceType": "volume", "Tags": [{"Key": "purpose", "Value": "production"}, {"Key": "cost", "Value": "cc123"}]})
        );
        assert_eq!(
            parse("DeviceName=/dev/sda1,Ebs={DeleteOnTermination=false}").unwrap(),
            json!({"DeviceName": "/dev/sda1", "Ebs": {"DeleteOnTermination": "false"}})
        );
        assert_eq!(
            parse("Value=m5.large").unwrap(),
            json!({"Value": "m5.large"})
        );
        assert_eq!(
            parse("a='x,y',b=\"q\"").unwrap(),
            json!({"a": "x,y", "b": "q"})
        );
        assert_eq!(parse(r"a=x\,y").unwrap(), json!({"a": "x,y"}));
        assert_eq!(
            parse("Values=a, b ,c").unwrap(),
            json!({"Values": ["a", "b", "c"]})
        );
    }

    #[test]
    fn errors_name_the_spot() {
        let e = parse("m5.large").unwrap_err().to_string();
        assert_eq!(
            e,
            "Expected: '=', received: 'EOF' for input:\nm5.large\n        ^"
        );
        assert!(parse("a=b,").is_err());
    }
}

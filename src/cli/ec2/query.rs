//! `--query`: JMESPath over the response, with the response's key order
//! kept.
//!
//! The jmespath crate keeps objects in sorted maps, while the AWS CLI
//! (Python dicts) keeps the response's order, and a multi-select hash's
//! keys in the order written. So after the search every object of the
//! result gets its keys back in the order of the first object of the
//! response (or multi-select hash of the expression) that has all of them.

use ebsim::ec2::wire::json::J;
use jmespath::ast::Ast;
use std::collections::HashSet;

/// A compiled `--query`.
pub struct Query {
    expr: jmespath::Expression<'static>,
}

impl Query {
    /// Compiles; the error is the CLI's "Bad value for --query" text.
    pub fn compile(text: &str) -> Result<Query, String> {
        let rewritten = legacy_literals(text);
        runtime()
            .compile(&rewritten)
            .map(|expr| Query { expr })
            .map_err(|e| format!("Bad value for --query {text}: Invalid jmespath expression: {e}"))
    }

    /// Runs the query on a response.
    pub fn search(&self, doc: &J) -> Result<J, String> {
        let data = std::rc::Rc::new(to_variable(doc));
        let mut ctx = jmespath::Context::new(self.expr.as_str(), runtime());
        let result = eval(&data, self.expr.as_ast(), &mut ctx).map_err(|e| e.to_string())?;
        let value = serde_json::to_value(&*result).map_err(|e| e.to_string())?;
        let mut orders: Vec<Vec<String>> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        hash_orders(self.expr.as_ast(), &mut orders, &mut seen);
        doc_orders(doc, &mut orders, &mut seen);
        Ok(reorder(J::from_serde(&value), &orders))
    }
}

/// The JMESPath runtime: the built-in functions, with `sum` as Python's
/// (an integer when every element is one: `sum([1, 2])` is `3`, not
/// `3.0`; the crate always answers a float).
fn runtime() -> &'static jmespath::Runtime {
    static RT: std::sync::OnceLock<jmespath::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        use jmespath::functions::{ArgumentType, CustomFunction, Signature};
        let mut rt = jmespath::Runtime::new();
        rt.register_builtin_functions();
        let sig = Signature::new(
            vec![ArgumentType::TypedArray(Box::new(ArgumentType::Number))],
            None,
        );
        rt.register_function(
            "sum",
            Box::new(CustomFunction::new(
                sig,
                Box::new(|args, _ctx| {
                    let items: Vec<serde_json::Number> = args
                        .first()
                        .and_then(|a| a.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| match &**v {
                                    jmespath::Variable::Number(n) => Some(n.clone()),
                                    _ => None,
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let ints: Option<i64> = items
                        .iter()
                        .try_fold(0i64, |acc, n| n.as_i64().and_then(|x| acc.checked_add(x)));
                    let n = match ints {
                        Some(total) => serde_json::Number::from(total),
                        None => {
                            let f: f64 = items.iter().filter_map(serde_json::Number::as_f64).sum();
                            serde_json::Number::from_f64(f).unwrap_or_else(|| 0.into())
                        }
                    };
                    Ok(std::rc::Rc::new(jmespath::Variable::Number(n)))
                }),
            )),
        );
        rt
    })
}

/// Rewrites Python jmespath's legacy literals: a backtick literal that is
/// not JSON (``Key==`Name` ``) is the string of its text (after leading
/// blanks), as the AWS CLI reads it; the rest of the expression is kept
/// as written (raw strings and quoted identifiers may hold backticks).
pub fn legacy_literals(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                while let Some(d) = chars.next() {
                    out.push(d);
                    if d == '\\' {
                        if let Some(e) = chars.next() {
                            out.push(e);
                        }
                    } else if d == c {
                        break;
                    }
                }
            }
            '`' => {
                let mut lexeme = String::new();
                let mut closed = false;
                while let Some(d) = chars.next() {
                    if d == '\\' && chars.peek() == Some(&'`') {
                        chars.next();
                        lexeme.push('`');
                    } else if d == '`' {
                        closed = true;
                        break;
                    } else {
                        lexeme.push(d);
                    }
                }
                let json_ok = serde_json::from_str::<serde_json::Value>(&lexeme).is_ok();
                let fallback = if !closed || json_ok {
                    None
                } else {
                    serde_json::from_str::<serde_json::Value>(&format!(
                        "\"{}\"",
                        lexeme.trim_start()
                    ))
                    .ok()
                };
                let body = match fallback {
                    Some(v) => v.to_string(),
                    None => lexeme,
                };
                out.push('`');
                out.push_str(&body.replace('`', "\\`"));
                if closed {
                    out.push('`');
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The value of `node` over `data`: the crate's interpreter, except that
/// the ordering comparisons (`<`, `<=`, `>`, `>=`) also compare two
/// strings, as Python's jmespath does (`StartTime>='2024-03-31'`); other
/// mixes answer null. Leaves without sub-expressions go to the crate.
fn eval(
    data: &jmespath::Rcvar,
    node: &Ast,
    ctx: &mut jmespath::Context<'_>,
) -> jmespath::SearchResult {
    use jmespath::Variable as V;
    use jmespath::ast::Comparator as C;
    use std::rc::Rc;
    let null = || Rc::new(V::Null);
    match node {
        Ast::Subexpr { lhs, rhs, .. } => {
            let left = eval(data, lhs, ctx)?;
            eval(&left, rhs, ctx)
        }
        Ast::Or { lhs, rhs, .. } => {
            let left = eval(data, lhs, ctx)?;
            if left.is_truthy() {
                Ok(left)
            } else {
                eval(data, rhs, ctx)
            }
        }
        Ast::And { lhs, rhs, .. } => {
            let left = eval(data, lhs, ctx)?;
            if left.is_truthy() {
                eval(data, rhs, ctx)
            } else {
                Ok(left)
            }
        }
        Ast::Not { node, .. } => Ok(Rc::new(V::Bool(!eval(data, node, ctx)?.is_truthy()))),
        Ast::Condition {
            predicate, then, ..
        } => {
            if eval(data, predicate, ctx)?.is_truthy() {
                eval(data, then, ctx)
            } else {
                Ok(null())
            }
        }
        Ast::Comparison {
            comparator,
            lhs,
            rhs,
            ..
        } => {
            let left = eval(data, lhs, ctx)?;
            let right = eval(data, rhs, ctx)?;
            let strings = match (&*left, &*right) {
                (V::String(a), V::String(b)) => Some((a.clone(), b.clone())),
                _ => None,
            };
            let r = match (comparator, strings) {
                (C::Equal | C::NotEqual, _) | (_, None) => left.compare(comparator, &right),
                (C::LessThan, Some((a, b))) => Some(a < b),
                (C::LessThanEqual, Some((a, b))) => Some(a <= b),
                (C::GreaterThan, Some((a, b))) => Some(a > b),
                (C::GreaterThanEqual, Some((a, b))) => Some(a >= b),
            };
            Ok(r.map_or_else(null, |b| Rc::new(V::Bool(b))))
        }
        Ast::ObjectValues { node, .. } => match &*eval(data, node, ctx)? {
            V::Object(m) => Ok(Rc::new(V::Array(m.values().cloned().collect()))),
            _ => Ok(null()),
        },
        Ast::Projection { lhs, rhs, .. } => match eval(data, lhs, ctx)?.as_array() {
            None => Ok(null()),
            Some(items) => {
                let mut out = Vec::new();
                for it in items {
                    let v = eval(it, rhs, ctx)?;
                    if !v.is_null() {
                        out.push(v);
                    }
                }
                Ok(Rc::new(V::Array(out)))
            }
        },
        Ast::Flatten { node, .. } => match eval(data, node, ctx)?.as_array() {
            None => Ok(null()),
            Some(items) => {
                let mut out = Vec::new();
                for it in items {
                    match it.as_array() {
                        Some(a) => out.extend(a.iter().cloned()),
                        None => out.push(it.clone()),
                    }
                }
                Ok(Rc::new(V::Array(out)))
            }
        },
        Ast::MultiList { elements, .. } => {
            if data.is_null() {
                return Ok(null());
            }
            let mut out = Vec::new();
            for e in elements {
                out.push(eval(data, e, ctx)?);
            }
            Ok(Rc::new(V::Array(out)))
        }
        Ast::MultiHash { elements, .. } => {
            if data.is_null() {
                return Ok(null());
            }
            let mut out = std::collections::BTreeMap::new();
            for kv in elements {
                out.insert(kv.key.clone(), eval(data, &kv.value, ctx)?);
            }
            Ok(Rc::new(V::Object(out)))
        }
        Ast::Function { name, args, offset } => {
            let mut vals = Vec::new();
            for a in args {
                vals.push(eval(data, a, ctx)?);
            }
            ctx.offset = *offset;
            match ctx.runtime.get_function(name) {
                Some(f) => f.evaluate(&vals, ctx),
                None => jmespath::interpret(data, node, ctx),
            }
        }
        leaf => jmespath::interpret(data, leaf, ctx),
    }
}

/// The response as a JMESPath value, built directly (no serde_json tree in
/// between: describe-volumes over 10,000 volumes is a 5 MB document).
fn to_variable(j: &J) -> jmespath::Variable {
    use jmespath::Variable as V;
    match j {
        J::Null => V::Null,
        J::Bool(b) => V::Bool(*b),
        J::Int(n) => V::Number(serde_json::Number::from(*n)),
        J::Float(f) => serde_json::Number::from_f64(*f)
            .map(V::Number)
            .unwrap_or(V::Null),
        J::Str(s) => V::String(s.clone()),
        J::Arr(a) => V::Array(a.iter().map(|x| std::rc::Rc::new(to_variable(x))).collect()),
        J::Obj(kv) => V::Object(
            kv.iter()
                .map(|(k, v)| (k.clone(), std::rc::Rc::new(to_variable(v))))
                .collect(),
        ),
    }
}

fn remember(keys: Vec<String>, orders: &mut Vec<Vec<String>>, seen: &mut HashSet<String>) {
    let sig = keys.join("\u{0}");
    if seen.insert(sig) {
        orders.push(keys);
    }
}

fn doc_orders(j: &J, orders: &mut Vec<Vec<String>>, seen: &mut HashSet<String>) {
    match j {
        J::Obj(kv) => {
            remember(kv.iter().map(|(k, _)| k.clone()).collect(), orders, seen);
            for (_, v) in kv {
                doc_orders(v, orders, seen);
            }
        }
        J::Arr(a) => {
            for v in a {
                doc_orders(v, orders, seen);
            }
        }
        _ => {}
    }
}

fn hash_orders(ast: &Ast, orders: &mut Vec<Vec<String>>, seen: &mut HashSet<String>) {
    match ast {
        Ast::MultiHash { elements, .. } => {
            remember(
                elements.iter().map(|kv| kv.key.clone()).collect(),
                orders,
                seen,
            );
            for kv in elements {
                hash_orders(&kv.value, orders, seen);
            }
        }
        Ast::Comparison { lhs, rhs, .. }
        | Ast::And { lhs, rhs, .. }
        | Ast::Or { lhs, rhs, .. }
        | Ast::Projection { lhs, rhs, .. }
        | Ast::Subexpr { lhs, rhs, .. } => {
            hash_orders(lhs, orders, seen);
            hash_orders(rhs, orders, seen);
        }
        Ast::Condition {
            predicate, then, ..
        } => {
            hash_orders(predicate, orders, seen);
            hash_orders(then, orders, seen);
        }
        Ast::Expref { ast, .. } => hash_orders(ast, orders, seen),
        Ast::Flatten { node, .. } | Ast::Not { node, .. } | Ast::ObjectValues { node, .. } => {
            hash_orders(node, orders, seen)
        }
        Ast::Function { args, .. } => {
            for a in args {
                hash_orders(a, orders, seen);
            }
        }
        Ast::MultiList { elements, .. } => {
            for a in elements {
                hash_orders(a, orders, seen);
            }
        }
        _ => {}
    }
}

fn reorder(j: J, orders: &[Vec<String>]) -> J {
    match j {
        J::Arr(a) => J::Arr(a.into_iter().map(|v| reorder(v, orders)).collect()),
        J::Obj(kv) => {
            let kv: Vec<(String, J)> = kv
                .into_iter()
                .map(|(k, v)| (k, reorder(v, orders)))
                .collect();
            let keys: HashSet<&str> = kv.iter().map(|(k, _)| k.as_str()).collect();
            let order = orders
                .iter()
                .find(|o| o.len() >= keys.len() && keys.iter().all(|k| o.iter().any(|ok| ok == k)));
            match order {
                Some(o) => {
                    let mut kv = kv;
                    kv.sort_by_key(|(k, _)| o.iter().position(|ok| ok == k).unwrap_or(usize::MAX));
                    J::Obj(kv)
                }
                None => J::Obj(kv),
            }
        }
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ebsim::ec2::wire::json::Obj;

    #[test]
    fn legacy_backtick_literals_and_python_sums() {
        assert_eq!(
            legacy_literals("Tags[?Key==`Name`]"),
            "Tags[?Key==`\"Name\"`]"
        );
        assert_eq!(legacy_literals("a[?b==`16`]"), "a[?b==`16`]");
        assert_eq!(legacy_literals("a[?b==`\"x\"`]"), "a[?b==`\"x\"`]");
        assert_eq!(legacy_literals("a[?b=='it`s']"), "a[?b=='it`s']");
        assert_eq!(legacy_literals("a[?b==` x y`]"), "a[?b==`\"x y\"`]");
        let doc = Obj::new()
            .put(
                "Volumes",
                vec![
                    Obj::new()
                        .put("Size", 8u64)
                        .put(
                            "Tags",
                            vec![Obj::new().put("Key", "Name").put("Value", "d").done()],
                        )
                        .done(),
                    Obj::new().put("Size", 2u64).done(),
                ],
            )
            .done();
        let run = |q: &str| Query::compile(q).unwrap().search(&doc).unwrap().to_pretty();
        assert_eq!(run("sum(Volumes[].Size)"), "10");
        assert_eq!(run("avg(Volumes[].Size)"), "5.0");
        assert_eq!(run("Volumes[0].Tags[?Key==`Name`].Value | [0]"), "\"d\"");
        assert_eq!(run("Volumes[?Tags[0].Value>='c'].Size"), "[\n    8\n]");
        assert_eq!(run("Volumes[?Tags[0].Value<'c'].Size"), "[]");
        assert_eq!(run("Volumes[?Size>`5`].Size"), "[\n    8\n]");
        assert_eq!(run("Volumes[?Size>'5'].Size"), "[]");
    }

    #[test]
    fn keeps_response_and_hash_order() {
        let doc = Obj::new()
            .put(
                "Volumes",
                vec![
                    Obj::new()
                        .put("VolumeType", "gp2")
                        .put("VolumeId", "vol-1")
                        .put("Size", 8u64)
                        .done(),
                ],
            )
            .done();
        let q = Query::compile("Volumes[0]").unwrap();
        assert_eq!(
            q.search(&doc).unwrap().to_pretty(),
            "{\n    \"VolumeType\": \"gp2\",\n    \"VolumeId\": \"vol-1\",\n    \"Size\": 8\n}"
        );
        let q = Query::compile("Volumes[].{Z:Size,A:VolumeId}").unwrap();
        assert_eq!(
            q.search(&doc).unwrap().to_pretty(),
            "[\n    {\n        \"Z\": 8,\n        \"A\": \"vol-1\"\n    }\n]"
        );
        assert_eq!(
            Query::compile("Volumes[0].Size")
                .unwrap()
                .search(&doc)
                .unwrap(),
            J::Int(8)
        );
        assert!(Query::compile("Volumes[").is_err());
    }
}

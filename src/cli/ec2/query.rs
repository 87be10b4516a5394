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
        jmespath::compile(text)
            .map(|expr| Query { expr })
            .map_err(|e| format!("Bad value for --query {text}: Invalid jmespath expression: {e}"))
    }

    /// Runs the query on a response.
    pub fn search(&self, doc: &J) -> Result<J, String> {
        let result = self
            .expr
            .search(to_variable(doc))
            .map_err(|e| e.to_string())?;
        let value = serde_json::to_value(&*result).map_err(|e| e.to_string())?;
        let mut orders: Vec<Vec<String>> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        hash_orders(self.expr.as_ast(), &mut orders, &mut seen);
        doc_orders(doc, &mut orders, &mut seen);
        Ok(reorder(J::from_serde(&value), &orders))
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

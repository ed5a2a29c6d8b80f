//! The plan's dependency graph: a topological order, the cycle that forbids one (named story by
//! story), and each story's remaining critical path (rule 3 starts the longest first).
//!
//! Stories are indexed by their position in the plan; edges point from a story to what it
//! depends on. Everything is deterministic: ties are broken by plan order.

use std::collections::HashMap;

/// What makes a set of stories not a DAG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    #[error("story id {id} is used twice")]
    DuplicateId { id: String },
    #[error("story {story} depends on {dependency}, which is not a story of the plan")]
    UnknownDependency { story: String, dependency: String },
    #[error("story {story} depends on itself")]
    SelfDependency { story: String },
    /// `path` starts and ends with the same story, each depending on the next: `A → B → A`.
    #[error("the dependencies form a cycle: {}", path.join(" → "))]
    Cycle { path: Vec<String> },
}

/// The validated graph.
#[derive(Debug, Clone)]
pub struct Dag {
    ids: Vec<String>,
    /// `deps[i]`: the stories `i` depends on.
    deps: Vec<Vec<usize>>,
    /// `dependents[i]`: the stories that depend on `i`.
    dependents: Vec<Vec<usize>>,
    /// Dependencies before dependents; plan order among equals.
    order: Vec<usize>,
}

impl Dag {
    /// Build from `(id, depends_on)` pairs in plan order.
    pub fn new<'a, I, D>(stories: I) -> Result<Dag, DagError>
    where
        I: IntoIterator<Item = (&'a str, D)>,
        D: IntoIterator<Item = &'a str>,
    {
        let stories: Vec<(&str, Vec<&str>)> = stories
            .into_iter()
            .map(|(id, d)| (id, d.into_iter().collect()))
            .collect();
        let mut index = HashMap::new();
        for (i, (id, _)) in stories.iter().enumerate() {
            if index.insert(*id, i).is_some() {
                return Err(DagError::DuplicateId { id: id.to_string() });
            }
        }
        let mut deps = vec![Vec::new(); stories.len()];
        let mut dependents = vec![Vec::new(); stories.len()];
        for (i, (id, ds)) in stories.iter().enumerate() {
            for d in ds {
                let Some(&j) = index.get(d) else {
                    return Err(DagError::UnknownDependency {
                        story: id.to_string(),
                        dependency: d.to_string(),
                    });
                };
                if i == j {
                    return Err(DagError::SelfDependency {
                        story: id.to_string(),
                    });
                }
                if !deps[i].contains(&j) {
                    deps[i].push(j);
                    dependents[j].push(i);
                }
            }
        }
        let ids: Vec<String> = stories.iter().map(|(id, _)| id.to_string()).collect();
        let order = topo_order(&deps).map_err(|cycle| DagError::Cycle {
            path: cycle.into_iter().map(|i| ids[i].clone()).collect(),
        })?;
        Ok(Dag {
            ids,
            deps,
            dependents,
            order,
        })
    }

    /// The graph of a validated plan.
    pub fn of(plan: &crate::Plan) -> Result<Dag, DagError> {
        Dag::new(plan.stories.iter().map(|s| {
            (
                s.id.as_str(),
                s.depends_on.iter().map(String::as_str).collect::<Vec<_>>(),
            )
        }))
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn id(&self, i: usize) -> &str {
        &self.ids[i]
    }

    pub fn index(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|x| x == id)
    }

    pub fn deps(&self, i: usize) -> &[usize] {
        &self.deps[i]
    }

    pub fn dependents(&self, i: usize) -> &[usize] {
        &self.dependents[i]
    }

    /// Dependencies before dependents.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Every story that depends on `i`, directly or not (what `blocked` spreads to).
    pub fn descendants(&self, i: usize) -> Vec<usize> {
        reach(&self.dependents, i)
    }

    /// Every story `i` depends on, directly or not (what `--only` must also run).
    pub fn ancestors(&self, i: usize) -> Vec<usize> {
        reach(&self.deps, i)
    }

    /// For each story, the longest path from it to the end of the plan, itself included, with
    /// `weight(i)` per story (1.0 each when durations are unknown).
    pub fn critical_paths(&self, weight: impl Fn(usize) -> f64) -> Vec<f64> {
        let mut len = vec![0.0; self.len()];
        for &i in self.order.iter().rev() {
            let tail = self.dependents[i]
                .iter()
                .map(|&d| len[d])
                .fold(0.0, f64::max);
            len[i] = weight(i) + tail;
        }
        len
    }
}

/// Every node reachable from `i` along `edges` (itself excluded), sorted.
fn reach(edges: &[Vec<usize>], i: usize) -> Vec<usize> {
    let mut seen = vec![false; edges.len()];
    let mut stack = vec![i];
    let mut out = Vec::new();
    while let Some(n) = stack.pop() {
        for &d in &edges[n] {
            if !seen[d] {
                seen[d] = true;
                out.push(d);
                stack.push(d);
            }
        }
    }
    out.sort_unstable();
    out
}

/// Kahn's algorithm, plan order among the ready; on a cycle, the cycle's story indices with
/// the first repeated at the end.
fn topo_order(deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = deps.len();
    let mut missing: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        // The first ready story in plan order: O(n²), nothing next to an agent run.
        let Some(next) = (0..n).find(|&i| !done[i] && missing[i] == 0) else {
            return Err(find_cycle(deps, &done));
        };
        done[next] = true;
        order.push(next);
        for &d in &dependents[next] {
            missing[d] -= 1;
        }
    }
    Ok(order)
}

/// Among the stories not ordered, every one has an unordered dependency: walk dependencies
/// from the first until a story repeats; the walk from its first visit is the cycle.
fn find_cycle(deps: &[Vec<usize>], done: &[bool]) -> Vec<usize> {
    let start = (0..deps.len()).find(|&i| !done[i]).unwrap_or(0);
    let mut path = vec![start];
    let mut at = start;
    loop {
        let Some(&next) = deps[at].iter().find(|&&d| !done[d]) else {
            return path;
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut cycle = path.split_off(pos);
            cycle.push(next);
            // In `depends_on` direction: each story depends on the next.
            return cycle;
        }
        path.push(next);
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dag(spec: &[(&'static str, &[&'static str])]) -> Result<Dag, DagError> {
        Dag::new(spec.iter().map(|(id, d)| (*id, d.iter().copied())))
    }

    #[test]
    fn orders_dependencies_first_and_keeps_plan_order_among_equals() {
        let d = dag(&[("c", &["a"]), ("a", &[]), ("b", &[]), ("d", &["c", "b"])]).unwrap();
        let order: Vec<&str> = d.order().iter().map(|&i| d.id(i)).collect();
        assert_eq!(order, ["a", "c", "b", "d"]);
        assert_eq!(d.descendants(1), vec![0, 3]);
        assert_eq!(d.ancestors(3), vec![0, 1, 2]);
        assert_eq!(d.ancestors(1), Vec::<usize>::new());
    }

    #[test]
    fn names_every_story_of_a_cycle() {
        let e = dag(&[("a", &[]), ("b", &["d"]), ("c", &["b"]), ("d", &["c"])]).unwrap_err();
        assert_eq!(
            e,
            DagError::Cycle {
                path: vec!["b".into(), "d".into(), "c".into(), "b".into()]
            }
        );
        assert_eq!(
            e.to_string(),
            "the dependencies form a cycle: b → d → c → b"
        );
    }

    #[test]
    fn refuses_unknown_self_and_duplicate() {
        assert!(matches!(
            dag(&[("a", &["zz"])]),
            Err(DagError::UnknownDependency { .. })
        ));
        assert!(matches!(
            dag(&[("a", &["a"])]),
            Err(DagError::SelfDependency { .. })
        ));
        assert!(matches!(
            dag(&[("a", &[]), ("a", &[])]),
            Err(DagError::DuplicateId { .. })
        ));
    }

    #[test]
    fn critical_path_is_the_longest_weighted_chain_to_the_end() {
        // a → b → d, a → c → d; c is slow.
        let d = dag(&[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])]).unwrap();
        let w = [1.0, 1.0, 5.0, 2.0];
        let cp = d.critical_paths(|i| w[i]);
        assert_eq!(cp, vec![8.0, 3.0, 7.0, 2.0]);
    }
}

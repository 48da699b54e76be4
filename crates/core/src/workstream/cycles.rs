//! Dependency cycles among workstreams: which ones lie on a cycle, and the cycle through
//! each, shown as `a -> b -> a`.

use super::Workstream;
use std::collections::{HashMap, VecDeque};

/// For each workstream, `Some(rendered cycle through it)` when it lies on a dependency cycle.
/// Tarjan's SCC algorithm (iterative: chains of 10,000 must not overflow the stack), then one
/// breadth-first search per cycle found, reused for every member of that cycle.
pub(super) fn find_cycles(ws: &[Workstream]) -> Vec<Option<String>> {
    let n = ws.len();
    let index_of: HashMap<&str, usize> = ws
        .iter()
        .enumerate()
        .map(|(i, w)| (w.id.as_str(), i))
        .collect();
    let adj: Vec<Vec<usize>> = ws
        .iter()
        .map(|w| {
            w.depends_on
                .iter()
                .filter_map(|d| index_of.get(d.as_str()).copied())
                .collect()
        })
        .collect();

    let mut comp = vec![usize::MAX; n];
    let mut comp_count = 0;
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut edge)) = call.last_mut() {
            if let Some(&w) = adj[v].get(*edge) {
                *edge += 1;
                if index[w] == usize::MAX {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(u, _)) = call.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == index[v] {
                    while let Some(x) = stack.pop() {
                        on_stack[x] = false;
                        comp[x] = comp_count;
                        if x == v {
                            break;
                        }
                    }
                    comp_count += 1;
                }
            }
        }
    }
    let mut comp_size = vec![0usize; comp_count];
    for &c in &comp {
        comp_size[c] += 1;
    }

    let mut result: Vec<Option<String>> = vec![None; n];
    for start in 0..n {
        if result[start].is_some() {
            continue;
        }
        let self_loop = adj[start].contains(&start);
        if comp_size[comp[start]] < 2 && !self_loop {
            continue;
        }
        // Shortest path start -> ... -> start inside the component.
        let path = if self_loop {
            vec![start]
        } else {
            let mut parent: HashMap<usize, usize> = HashMap::new();
            let mut queue = VecDeque::from([start]);
            let mut end = None;
            'bfs: while let Some(v) = queue.pop_front() {
                for &w in &adj[v] {
                    if comp[w] != comp[start] {
                        continue;
                    }
                    if w == start {
                        end = Some(v);
                        break 'bfs;
                    }
                    if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(w) {
                        e.insert(v);
                        queue.push_back(w);
                    }
                }
            }
            let mut path = Vec::new();
            let mut cur = end.unwrap_or(start);
            while cur != start {
                path.push(cur);
                cur = parent[&cur];
            }
            path.push(start);
            path.reverse();
            path
        };
        for k in 0..path.len() {
            let member = path[k];
            if result[member].is_none() {
                let rotated: Vec<&str> = path[k..]
                    .iter()
                    .chain(&path[..k])
                    .map(|&i| ws[i].id.as_str())
                    .collect();
                result[member] = Some(render_cycle(&rotated));
            }
        }
    }
    result
}

/// `a -> b -> a`; long cycles are shortened to the first eight ids.
fn render_cycle(ids: &[&str]) -> String {
    const SHOWN: usize = 8;
    let mut out = String::new();
    for id in ids.iter().take(SHOWN) {
        out.push_str(id);
        out.push_str(" -> ");
    }
    if ids.len() > SHOWN {
        out.push_str(&format!("… ({} more) -> ", ids.len() - SHOWN));
    }
    out.push_str(ids[0]);
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_util::ws;
    use super::super::{validate_set, Workstream};

    #[test]
    fn cycles_invalidate_members_only() {
        let loaded = validate_set(
            vec![
                ws("1.json", "a", &["b"]),
                ws("2.json", "b", &["a"]),
                ws("3.json", "c", &["a"]),
                ws("4.json", "p", &["q"]),
                ws("5.json", "q", &["r"]),
                ws("6.json", "r", &["p", "c"]),
                ws("7.json", "s", &["s"]),
                ws("8.json", "t", &[]),
            ],
            vec![],
            vec![],
        );
        let ids: Vec<&str> = loaded.valid.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, vec!["c", "t"], "c only depends on a cycle member");
        let msgs: Vec<&str> = loaded.invalid.iter().map(|i| i.message.as_str()).collect();
        assert_eq!(
            msgs,
            vec![
                "1.json: field \"depends_on\": dependency cycle a -> b -> a",
                "2.json: field \"depends_on\": dependency cycle b -> a -> b",
                "4.json: field \"depends_on\": dependency cycle p -> q -> r -> p",
                "5.json: field \"depends_on\": dependency cycle q -> r -> p -> q",
                "6.json: field \"depends_on\": dependency cycle r -> p -> q -> r",
                "7.json: field \"depends_on\": dependency cycle s -> s",
            ]
        );
        assert!(loaded.invalid.iter().all(|i| i.id.is_some()));
    }

    #[test]
    fn long_cycles_and_chains_are_handled_quickly() {
        let n = 10_000;
        let id = |i: usize| format!("w{i:05}");
        let ring: Vec<Workstream> = (0..n)
            .map(|i| {
                let mut w = ws(&format!("{}.json", id(i)), &id(i), &[]);
                w.depends_on = vec![id((i + 1) % n)];
                w
            })
            .collect();
        let loaded = validate_set(ring, vec![], vec![]);
        assert!(loaded.valid.is_empty());
        assert_eq!(loaded.invalid.len(), n);
        assert_eq!(
            loaded.invalid[0].message,
            "w00000.json: field \"depends_on\": dependency cycle w00000 -> w00001 -> w00002 -> \
             w00003 -> w00004 -> w00005 -> w00006 -> w00007 -> … (9992 more) -> w00000"
        );
        let chain: Vec<Workstream> = (0..n)
            .map(|i| {
                let mut w = ws(&format!("{}.json", id(i)), &id(i), &[]);
                if i > 0 {
                    w.depends_on = vec![id(i - 1)];
                }
                w
            })
            .collect();
        let loaded = validate_set(chain, vec![], vec![]);
        assert_eq!(loaded.valid.len(), n);
    }
}

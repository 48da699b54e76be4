//! Dependency cycles among workstreams: which ones lie on a cycle, and the cycle through
//! each, shown as `a -> b -> a`.

use super::Workstream;
use std::collections::{HashMap, VecDeque};

/// For each workstream, `Some(rendered cycle through it)` when it lies on a dependency cycle.
/// Tarjan's SCC algorithm (iterative: chains of 10,000 must not overflow the stack), then one
/// breadth-first search per cycle found, reused for every member of that cycle.
pub(super) fn find_cycles(ws: &[Workstream]) -> Vec<Option<String>> {
    let adj = dependency_graph(ws);
    let components = Components::find(&adj);
    let mut result: Vec<Option<String>> = vec![None; ws.len()];
    for start in 0..ws.len() {
        if result[start].is_some() || !components.on_cycle(&adj, start) {
            continue;
        }
        let path = shortest_cycle(&adj, &components.of, start);
        name_cycle_members(ws, &path, &mut result);
    }
    result
}

/// Each workstream's dependencies, as indices into `ws` (ids outside `ws` left out).
fn dependency_graph(ws: &[Workstream]) -> Vec<Vec<usize>> {
    let index_of: HashMap<&str, usize> = ws
        .iter()
        .enumerate()
        .map(|(i, w)| (w.id.as_str(), i))
        .collect();
    ws.iter()
        .map(|w| {
            w.depends_on
                .iter()
                .filter_map(|d| index_of.get(d.as_str()).copied())
                .collect()
        })
        .collect()
}

/// The strongly connected components of a graph: `of[v]` is v's, `size[c]` how many
/// members component `c` has.
struct Components {
    of: Vec<usize>,
    size: Vec<usize>,
}

impl Components {
    fn find(adj: &[Vec<usize>]) -> Components {
        let mut tarjan = Tarjan::new(adj.len());
        for root in 0..adj.len() {
            if tarjan.index[root] == UNVISITED {
                tarjan.visit(adj, root);
            }
        }
        let mut size = vec![0usize; tarjan.comp_count];
        for &c in &tarjan.comp {
            size[c] += 1;
        }
        Components {
            of: tarjan.comp,
            size,
        }
    }

    /// Whether `v` lies on a cycle: it shares its component, or depends on itself.
    fn on_cycle(&self, adj: &[Vec<usize>], v: usize) -> bool {
        self.size[self.of[v]] >= 2 || adj[v].contains(&v)
    }
}

const UNVISITED: usize = usize::MAX;

/// Tarjan's algorithm, iterative: its own call stack instead of recursion.
struct Tarjan {
    comp: Vec<usize>,
    comp_count: usize,
    index: Vec<usize>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next_index: usize,
}

impl Tarjan {
    fn new(n: usize) -> Tarjan {
        Tarjan {
            comp: vec![usize::MAX; n],
            comp_count: 0,
            index: vec![UNVISITED; n],
            low: vec![0usize; n],
            on_stack: vec![false; n],
            stack: Vec::new(),
            next_index: 0,
        }
    }

    /// First visit of `v`: number it and push it.
    fn enter(&mut self, v: usize) {
        self.index[v] = self.next_index;
        self.low[v] = self.next_index;
        self.next_index += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
    }

    /// Depth-first from `root`, assigning the components of everything it reaches.
    fn visit(&mut self, adj: &[Vec<usize>], root: usize) {
        // (vertex, next edge to follow)
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        self.enter(root);
        while let Some(&mut (v, ref mut edge)) = call.last_mut() {
            if let Some(&w) = adj[v].get(*edge) {
                *edge += 1;
                if self.index[w] == UNVISITED {
                    self.enter(w);
                    call.push((w, 0));
                } else if self.on_stack[w] {
                    self.low[v] = self.low[v].min(self.index[w]);
                }
            } else {
                call.pop();
                if let Some(&(u, _)) = call.last() {
                    self.low[u] = self.low[u].min(self.low[v]);
                }
                if self.low[v] == self.index[v] {
                    self.close_component(v);
                }
            }
        }
    }

    /// `v` is the root of a component: pop its members off the stack.
    fn close_component(&mut self, v: usize) {
        while let Some(x) = self.stack.pop() {
            self.on_stack[x] = false;
            self.comp[x] = self.comp_count;
            if x == v {
                break;
            }
        }
        self.comp_count += 1;
    }
}

/// The shortest path `start -> ... -> start` inside `start`'s component (breadth-first), as
/// the members in order from `start`; just `[start]` when it depends on itself.
fn shortest_cycle(adj: &[Vec<usize>], comp: &[usize], start: usize) -> Vec<usize> {
    if adj[start].contains(&start) {
        return vec![start];
    }
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
}

/// Give every member of the cycle `path` that has none yet the cycle rendered from itself.
fn name_cycle_members(ws: &[Workstream], path: &[usize], result: &mut [Option<String>]) {
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

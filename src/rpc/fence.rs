//! Tree fences: how a directory rename keeps every other operation out of the trees it moves.
//!
//! A directory rename changes the path of every record below it, on every rank, in several
//! steps. An operation inside the tree that ran between those steps would act on a half-moved
//! tree: count an entry in a parent that then moves, or make a record under a name that has just
//! gone. So every path operation of a rank's application passes this rank's gate
//! ([`Fences::enter`]) and stays registered until it ends; and a directory rename first fences
//! its old and new trees on every rank ([`Fences::begin`], sent as `MoveBegin`). From then on
//! the gates hold new operations on those trees back, and the fence waits for the registered
//! ones to end. Only then does the tree move; `MoveEnd` lifts the fences ([`Fences::end`]), and
//! the operations held back go on, finding the tree at its new place.
//!
//! Two directory renames whose trees overlap would each wait for the other. The older one (the
//! lower [`MoverId`]) goes first: a rename whose fence meets an older rename, registered or
//! fenced, gives up its fences with `Error::Locked` and tries again; an older one waits for a
//! younger one to step aside. The waits only go from older to younger, so they never close a
//! circle. A rename keeps its id when it tries again, so it only gets older.

use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};

use crate::error::{Error, Result};
use crate::ids::Rank;
use crate::path::is_below;

/// Names a directory rename across the job: ids from one rank grow with time (milliseconds in
/// the high bits), and the low bits hold the rank.
pub type MoverId = u64;

/// Bits of a [`MoverId`] that hold the rank.
const RANK_BITS: u32 = 22;

/// A slot for an operation registered at this rank's gate. A slot keeps its buffers for the
/// next registration, which copies its paths into them: it allocates only for paths longer
/// than any the slot held before.
#[derive(Default)]
struct Op {
    /// The first `count` are this registration's paths.
    paths: Vec<Vec<u8>>,
    count: usize,
    /// Registered now (else the slot is free).
    live: bool,
    /// The id of a directory rename, which fences trees of its own; `None` for any other
    /// operation, which needs no id that orders it (an id reads the clock).
    mover: Option<MoverId>,
}

impl Op {
    fn paths(&self) -> &[Vec<u8>] {
        &self.paths[..self.count]
    }
}

/// The trees one directory rename has fenced at this rank.
struct Fence {
    mover: MoverId,
    trees: [Vec<u8>; 2],
}

#[derive(Default)]
struct State {
    ops: Vec<Op>,
    /// Slots of `ops` that are free.
    free: Vec<usize>,
    fences: Vec<Fence>,
}

/// This rank's gate and the fences set at it.
pub struct Fences {
    rank: Rank,
    last_id: Cell<u64>,
    state: RefCell<State>,
    /// Tasks waiting for the state to change (gates and fences alike); each checks again.
    waiters: RefCell<Vec<Waker>>,
    /// Told of each tree that moved, before the gates open again: the file-system layer
    /// renames its descriptors' paths with it.
    on_moved: RefCell<Option<MoveHook>>,
}

/// What [`Fences::on_moved`] calls, with the old and the new path of a moved directory.
pub type MoveHook = Box<dyn Fn(&[u8], &[u8])>;

/// True if `path` is `tree` or lies below it.
fn covers(tree: &[u8], path: &[u8]) -> bool {
    path == tree || is_below(path, tree)
}

fn overlap(a: &[u8], b: &[u8]) -> bool {
    covers(a, b) || covers(b, a)
}

/// True if the operation on `paths` must wait for a fence of `trees`: an operation inside a
/// fenced tree waits, and so does a rename that would move a tree holding one or lying in one.
fn meets(trees: &[Vec<u8>; 2], paths: &[impl AsRef<[u8]>], mover: bool) -> bool {
    trees.iter().any(|t| paths.iter().map(AsRef::as_ref).any(|p| if mover { overlap(t, p) } else { covers(t, p) }))
}

/// A registered operation; dropping it ends the registration.
pub struct Pass<'a> {
    fences: &'a Fences,
    slot: usize,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut state = self.fences.state.borrow_mut();
        state.ops[self.slot].live = false;
        state.free.push(self.slot);
        drop(state);
        self.fences.wake_all();
    }
}

impl Fences {
    pub fn new(rank: Rank) -> Fences {
        Fences { rank, last_id: Cell::new(0), state: RefCell::default(), waiters: RefCell::default(), on_moved: RefCell::new(None) }
    }

    /// A new id for a directory rename, above every id this rank gave before.
    pub fn new_id(&self) -> MoverId {
        let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let rank = self.rank.0 as u64 & ((1 << RANK_BITS) - 1);
        let id = (ms << RANK_BITS | rank).max(self.last_id.get() + (1 << RANK_BITS));
        self.last_id.set(id);
        id
    }

    fn wake_all(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        waiters.into_iter().for_each(Waker::wake);
    }

    /// Waits until no fence holds an operation on `paths` back, then registers it until the
    /// returned pass is dropped. `mover`: the operation is the directory rename with this id
    /// (from [`Fences::new_id`]), which fences trees itself.
    pub async fn enter(&self, paths: &[&[u8]], mover: Option<MoverId>) -> Pass<'_> {
        std::future::poll_fn(|cx| {
            if self.holds_back(paths, mover.is_some()) {
                self.waiters.borrow_mut().push(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(())
        })
        .await;
        let mut state = self.state.borrow_mut();
        let slot = state.free.pop().unwrap_or_else(|| {
            state.ops.push(Op::default());
            state.ops.len() - 1
        });
        let op = &mut state.ops[slot];
        if op.paths.len() < paths.len() {
            op.paths.resize_with(paths.len(), Vec::new);
        }
        for (buf, path) in op.paths.iter_mut().zip(paths) {
            buf.clear();
            buf.extend_from_slice(path);
        }
        (op.count, op.live, op.mover) = (paths.len(), true, mover);
        Pass { fences: self, slot }
    }

    /// True while a fence holds an operation on `paths` back (`moving`: the operation is a
    /// directory rename). An operation that finishes without awaiting need not register: no
    /// fence can go up while it runs, so it only checks that none is up.
    pub fn holds_back(&self, paths: &[&[u8]], moving: bool) -> bool {
        self.state.borrow().fences.iter().any(|f| meets(&f.trees, paths, moving))
    }

    /// Fences the trees `from` and `to` at this rank for the directory rename `mover`, and waits
    /// until no operation registered here is inside them. `Error::Locked` (the fence is gone
    /// again) when an older rename is in the way.
    pub async fn begin(&self, mover: MoverId, from: &[u8], to: &[u8]) -> Result<()> {
        let trees = [from.to_vec(), to.to_vec()];
        self.state.borrow_mut().fences.push(Fence { mover, trees: trees.clone() });
        let cleared = std::future::poll_fn(|cx| {
            let state = self.state.borrow();
            let ops = state.ops.iter().filter(|op| op.live && op.mover != Some(mover) && meets(&trees, op.paths(), op.mover.is_some()));
            let movers = ops.clone().filter_map(|op| op.mover);
            let fences = state.fences.iter().filter(|f| f.mover != mover && meets(&f.trees, &trees, true)).map(|f| f.mover);
            let mut blocked = false;
            for other in movers.chain(fences) {
                if other < mover {
                    return Poll::Ready(Err(Error::Locked));
                }
                blocked = true;
            }
            if blocked || ops.clone().next().is_some() {
                self.waiters.borrow_mut().push(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(Ok(()))
        })
        .await;
        if cleared.is_err() {
            self.end(mover, false);
        }
        cleared
    }

    /// Sets what is told of each tree that moved.
    pub fn on_moved(&self, hook: MoveHook) {
        *self.on_moved.borrow_mut() = Some(hook);
    }

    /// Lifts the fences of the directory rename `mover` at this rank (none: nothing happens);
    /// `moved`: the tree did move, and the hook hears of it before any operation held back goes
    /// on. Returns the old and new path of the moved tree.
    pub fn end(&self, mover: MoverId, moved: bool) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut state = self.state.borrow_mut();
        let at = state.fences.iter().position(|f| f.mover == mover);
        let fence = at.map(|at| state.fences.swap_remove(at));
        drop(state);
        let trees = fence.filter(|_| moved).map(|f| {
            let [from, to] = f.trees;
            (from, to)
        });
        if let (Some((from, to)), Some(hook)) = (&trees, &*self.on_moved.borrow()) {
            hook(from, to);
        }
        self.wake_all();
        trees
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_once<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        futures_lite::future::block_on(futures_lite::future::poll_once(f)).map_or(Poll::Pending, Poll::Ready)
    }

    fn paths<'a>(list: &[&'a str]) -> Vec<&'a [u8]> {
        list.iter().map(|p| p.as_bytes()).collect()
    }

    #[test]
    fn trees_cover_their_paths_only() {
        assert!(covers(b"/a", b"/a") && covers(b"/a", b"/a/b") && covers(b"/", b"/x"));
        assert!(!covers(b"/a", b"/ab") && !covers(b"/a/b", b"/a"));
        assert!(overlap(b"/a/b", b"/a") && !overlap(b"/a/b", b"/a/c"));
    }

    #[test]
    fn a_fence_waits_for_operations_inside_and_holds_new_ones_back() {
        let fences = Fences::new(Rank(0));
        let inside = poll_once(std::pin::pin!(fences.enter(&paths(&["/d/x"]), None)));
        let Poll::Ready(inside) = inside else { panic!("no fence yet") };
        let mover = fences.new_id();
        let mut begin = std::pin::pin!(fences.begin(mover, b"/d", b"/e"));
        assert!(poll_once(begin.as_mut()).is_pending(), "an operation inside the tree is still running");
        let new_tree = paths(&["/e/y"]);
        let mut later = std::pin::pin!(fences.enter(&new_tree, None));
        assert!(poll_once(later.as_mut()).is_pending(), "the new tree is fenced too");
        let outside = poll_once(std::pin::pin!(fences.enter(&paths(&["/dd", "/"]), None)));
        assert!(outside.is_ready(), "a sibling and an ancestor are not inside");
        drop(inside);
        assert!(matches!(poll_once(begin.as_mut()), Poll::Ready(Ok(()))));
        assert!(poll_once(later.as_mut()).is_pending());
        let seen = std::rc::Rc::new(RefCell::new(Vec::new()));
        let log = seen.clone();
        fences.on_moved(Box::new(move |from, to| log.borrow_mut().push([from, b" -> ", to].concat())));
        assert_eq!(fences.end(mover, true), Some((b"/d".to_vec(), b"/e".to_vec())));
        assert_eq!(*seen.borrow(), [b"/d -> /e".to_vec()], "told before the gate opens");
        assert!(poll_once(later.as_mut()).is_ready());
        assert_eq!(fences.end(mover, true), None, "a fence ends once");
    }

    #[test]
    fn a_raised_fence_holds_back_what_it_covers_from_a_call_that_does_not_wait() {
        let fences = Fences::new(Rank(0));
        assert!(!fences.holds_back(&paths(&["/d/x"]), false), "no fence yet");
        let mover = fences.new_id();
        let raised = poll_once(std::pin::pin!(fences.begin(mover, b"/d", b"/e")));
        assert!(matches!(raised, Poll::Ready(Ok(()))), "nothing to wait for");
        for inside in ["/d", "/d/x", "/e/y/z"] {
            assert!(fences.holds_back(&paths(&[inside]), false), "{inside} is inside a fenced tree");
        }
        for outside in ["/dd", "/", "/f/d"] {
            assert!(!fences.holds_back(&paths(&[outside]), false), "{outside} is not");
        }
        assert!(fences.holds_back(&paths(&["/"]), true), "a rename of an ancestor overlaps the trees");
        fences.end(mover, true);
        assert!(!fences.holds_back(&paths(&["/d/x"]), false), "the fence is lifted");
    }

    #[test]
    fn the_older_of_two_overlapping_renames_goes_first() {
        let fences = Fences::new(Rank(3));
        let (old, young) = (fences.new_id(), fences.new_id());
        assert!(old < young);
        let Poll::Ready(_young_pass) = poll_once(std::pin::pin!(fences.enter(&paths(&["/d/a", "/x"]), Some(young)))) else {
            panic!("no fence yet")
        };
        let mut older = std::pin::pin!(fences.begin(old, b"/d", b"/e"));
        assert!(poll_once(older.as_mut()).is_pending(), "the older waits for the younger to step aside");
        let younger = poll_once(std::pin::pin!(fences.begin(young, b"/d/a", b"/x")));
        assert!(matches!(younger, Poll::Ready(Err(Error::Locked))), "the younger gives way");
        assert_eq!(fences.state.borrow().fences.len(), 1, "and its fence is gone");
    }

    #[test]
    fn a_registration_in_a_reused_slot_holds_its_own_paths_only() {
        let fences = Fences::new(Rank(0));
        let Poll::Ready(first) = poll_once(std::pin::pin!(fences.enter(&paths(&["/b/long/path", "/c/other"]), None))) else {
            panic!("no fence yet")
        };
        drop(first);
        let Poll::Ready(second) = poll_once(std::pin::pin!(fences.enter(&paths(&["/a/x"]), None))) else { panic!("no fence yet") };
        assert_eq!(fences.state.borrow().ops.len(), 1, "the freed slot is used again");
        let mover = fences.new_id();
        let elsewhere = poll_once(std::pin::pin!(fences.begin(mover, b"/b", b"/c")));
        assert!(matches!(elsewhere, Poll::Ready(Ok(()))), "the slot's old paths are not registered any more");
        fences.end(mover, false);
        let mover = fences.new_id();
        let mut inside = std::pin::pin!(fences.begin(mover, b"/a", b"/z"));
        assert!(poll_once(inside.as_mut()).is_pending(), "the operation inside the tree is registered");
        drop(second);
        assert!(matches!(poll_once(inside.as_mut()), Poll::Ready(Ok(()))));
    }
}

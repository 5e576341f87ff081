//! The local POSIX directory that BenchFS is compared with: choosing, setting up and removing it.

use mpi::traits::*;

use crate::ctx::Ctx;
use crate::meta::PARENTS;
use crate::store::{Store, System};

/// The POSIX directory: as given, or a fresh one named after the job so that concurrent jobs on a
/// node do not collide. Rank 0 chooses it, because each rank has its own pid.
pub fn choose_posix_dir(ctx: &Ctx) -> String {
    let chosen = match (&ctx.opts.posix_dir, ctx.rank) {
        (Some(dir), _) => dir.clone(),
        (None, 0) => {
            let id = ["SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
                .unwrap_or_else(|| std::process::id().to_string());
            let id: String = id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
            format!("/dev/shm/benchfs-bench-posix-{id}")
        }
        (None, _) => String::new(),
    };
    ctx.broadcast_string(chosen).trim_end_matches('/').to_string()
}

/// What setting up the POSIX side found out.
pub struct PosixSetup {
    /// Whether rank 0 created the directory (and so removes it again at the end).
    pub created_root: bool,
    /// Whether every rank sees the same directory. Node-local directories (e.g. /dev/shm on
    /// several nodes) cannot host a shared file or a read of another rank's file.
    pub shared: bool,
}

impl PosixSetup {
    /// Whether `store` can host a pattern in which ranks use each other's files: BenchFS always,
    /// the POSIX directory when every rank sees the same one (or there is only one rank).
    pub fn hosts_cross_rank(&self, ctx: &Ctx, store: &impl Store) -> bool {
        store.system() == System::BenchFs || self.shared || ctx.size == 1
    }
}

/// The directories of [`PARENTS`] below `root`.
fn create_posix_parents(root: &str) -> std::io::Result<()> {
    PARENTS.iter().try_for_each(|dir| std::fs::create_dir_all(format!("{root}{dir}")))
}

/// Creates the directories of [`PARENTS`] below `root` on every rank and finds out whether all
/// ranks see the same directory.
pub fn setup_posix_dir(ctx: &Ctx, root: &str) -> PosixSetup {
    let marker = format!("{root}/.benchfs-bench-visible");
    let mut created = 0u64;
    if ctx.rank == 0 {
        created = u64::from(!std::path::Path::new(root).exists());
        let made = create_posix_parents(root).and_then(|_| std::fs::write(&marker, b""));
        if let Err(e) = made {
            eprintln!("benchfs-bench: cannot set up POSIX directory {root}: {e}");
            ctx.world.abort(2);
        }
    }
    ctx.barrier();
    let sees_marker = u64::from(std::path::Path::new(&marker).exists());
    ctx.barrier();
    if ctx.rank != 0 {
        if let Err(e) = create_posix_parents(root) {
            eprintln!("benchfs-bench: rank {}: cannot set up POSIX directory {root}: {e}", ctx.rank);
            ctx.world.abort(2);
        }
    }
    ctx.barrier();
    if ctx.rank == 0 {
        let _ = std::fs::remove_file(&marker);
    }
    let root_rank = ctx.world.process_at_rank(0);
    root_rank.broadcast_into(&mut created);
    PosixSetup { created_root: created == 1, shared: ctx.min_u64(sees_marker) == 1 }
}

/// Removes the directories the benchmark created. Only empty directories are removed (every file
/// was unlinked by its pattern), so a user-supplied directory never loses foreign files.
pub fn remove_posix_dir(ctx: &Ctx, root: &str, setup: &PosixSetup) {
    ctx.barrier();
    // Every rank tries, so that node-local directories on every node go too; whoever comes second
    // finds them gone, which is fine.
    for dir in PARENTS {
        let _ = std::fs::remove_dir(format!("{root}{dir}"));
    }
    if setup.created_root {
        let _ = std::fs::remove_dir(root);
    }
    ctx.barrier();
}

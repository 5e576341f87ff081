//! The quick-start demo: every rank writes a greeting into BenchFS, then reads everyone's.
//!
//! ```text
//! mpirun -np 4 target/debug/examples/demo
//! ```
//!
//! Nothing is started beforehand: the MPI ranks of the job are the file system's servers, and the
//! files live only as long as the job does.

use mpi::traits::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let universe = mpi::initialize().ok_or("MPI was already initialized")?;
    let world = universe.world();
    let (rank, size) = (world.rank(), world.size());

    // Collective: from here on this rank serves the others' requests in a background thread.
    benchfs::init(&world)?;

    // One rank makes the directory; the others wait until it exists.
    if rank == 0 {
        benchfs::mkdir("/demo", 0o755)?;
    }
    world.barrier();

    // Each rank writes its own file. Its chunks are spread over all ranks by hashing.
    let greeting = format!("Hello from rank {rank} of {size}!\n");
    let path = format!("/demo/greeting.{rank}");
    let fd = benchfs::open(&path, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, 0o644)?;
    benchfs::pwrite(fd, greeting.as_bytes(), 0)?;
    // Close-to-open consistency: after this close, any rank that opens the file sees the data.
    benchfs::close(fd)?;

    world.barrier();

    // Everyone reads everyone's file.
    let mut texts = Vec::new();
    for peer in 0..size {
        let path = format!("/demo/greeting.{peer}");
        let size = benchfs::stat(&path)?.size;
        let mut buf = vec![0u8; size as usize];
        let fd = benchfs::open(&path, libc::O_RDONLY, 0)?;
        let n = benchfs::pread(fd, &mut buf, 0)?;
        benchfs::close(fd)?;
        buf.truncate(n);
        texts.push((path, String::from_utf8_lossy(&buf).into_owned()));
    }

    if rank == 0 {
        println!("rank 0 read {} files from BenchFS:", texts.len());
        for (path, text) in &texts {
            print!("  {path}: {text}");
        }
        let bytes: usize = texts.iter().map(|(_, t)| t.len()).sum();
        println!("{size} ranks wrote and read {bytes} bytes in total.");
    }

    // Nobody removes a file while another rank may still be reading it.
    world.barrier();
    benchfs::unlink(&path)?;

    // Collective: stops the progress thread and removes this rank's chunk files.
    benchfs::finalize()?;
    Ok(())
}

//! An attached client that tries what only the job's ranks may do: requests that ranks send each
//! other (refused with EPERM), and requests claiming to come from a rank of the job (dropped
//! unserved: an unlink so claimed leaves the file in place). Its own requests are served as
//! usual. `hostile_client CONTACT_FILE PATH` (PATH: a file of the serving job); prints
//! `hostile_client: N passed, M failed`.

mod common;

use std::path::Path;

use benchfs::testing::{Request, Ring, CREDENTIAL_LEN, EXTERNAL_SOURCE, HEADER_LEN, REQUEST_HEADER_LEN};

use common::Checker;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (contact, path) = (&args[1], &args[2]);
    let universe = mpi::initialize().expect("MPI initializes");
    let world = universe.world();
    benchfs::attach(&world, Path::new(contact)).expect("attaches to the serving job");
    let mut c = Checker::new("hostile_client", mpi::traits::Communicator::rank(&world) as usize, u64::MAX);
    let before = benchfs::stat(path);
    c.expect("the client's own stat is served", before.is_ok(), path);
    let ranks = server_ranks(contact).expect("the serving job's size");
    let ring = Ring::new(ranks);
    let owner = ring.meta_owner(path.as_bytes()).0;
    let dir = std::path::Path::new(path).parent().and_then(|d| d.to_str()).unwrap_or("/").to_string();
    let internal = [
        ("enlist", Request::Enlist { rank: 0, path: dir.clone().into_bytes() }),
        ("drain", Request::Drain { path: dir.clone().into_bytes() }),
        ("install many", Request::InstallMany { count: 0 }),
    ];
    for (what, request) in internal {
        let to = ring.meta_owner(dir.as_bytes()).0;
        let got = benchfs::testing::send_raw_request(to, request.encode(EXTERNAL_SOURCE, 0), Vec::new(), true);
        c.expect(
            &format!("{what} from an attached client refused with EPERM"),
            matches!(got, Ok(Some(e)) if e == libc::EPERM),
            got.map_err(|e| e.errno()),
        );
    }
    // The wrong key (a stale contact file, say): answered at once, with EACCES, and not served.
    let mut wrong = Request::Unlink { path: path.clone().into_bytes() }.encode(EXTERNAL_SOURCE, 0);
    wrong[HEADER_LEN..REQUEST_HEADER_LEN].copy_from_slice(&[0x77; CREDENTIAL_LEN]);
    let got = benchfs::testing::send_raw_request(owner, wrong, Vec::new(), true);
    c.expect(
        "an unlink with the wrong client key refused with EACCES",
        matches!(got, Ok(Some(e)) if e == libc::EACCES),
        got.map_err(|e| e.errno()),
    );
    // Passing for rank 0 with the client key: dropped, so the unlink does nothing.
    let claimed = Request::Unlink { path: path.clone().into_bytes() }.encode(0, 0);
    let sent = benchfs::testing::send_raw_request(owner, claimed, Vec::new(), false);
    c.expect("an unlink claiming to come from rank 0 sent", sent.is_ok(), sent.map_err(|e| e.errno()));
    let after = benchfs::stat(path);
    c.expect(
        "an unlink claiming to come from rank 0 not served",
        after.as_ref().ok().map(|s| s.ino) == before.as_ref().ok().map(|s| s.ino),
        (path, after.map_err(|e| e.errno())),
    );
    let totals = c.totals(&world);
    benchfs::finalize().expect("detaches");
    totals.print();
    if totals.failed > 0 {
        std::process::exit(1);
    }
}

/// The number of serving ranks, from the contact file's `ranks` line.
fn server_ranks(contact: &str) -> benchfs::Result<u32> {
    let text = std::fs::read_to_string(contact).map_err(|e| benchfs::Error::Storage(e.into()))?;
    text.lines().find_map(|l| l.strip_prefix("ranks ")?.parse().ok()).ok_or(benchfs::Error::InvalidArgument("no ranks line"))
}

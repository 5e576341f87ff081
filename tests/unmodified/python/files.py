"""An ordinary mpi4py program: every rank writes files with open() in a directory given on the
command line, then reads and checks the other ranks' files byte for byte, lists the directory,
renames and removes.

    python3 files.py DIR [LOCAL_DIR]    (LOCAL_DIR is not used)

Ends with "python_files: P passed, F failed" from rank 0.
"""
import os
import sys

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"[python_files rank {rank}] FAIL: {what}", file=sys.stderr, flush=True)


def payload(owner, length):
    return bytes((i * 31 + owner * 7 + i // 257) & 0xFF for i in range(length))


directory = sys.argv[1]
if rank == 0:
    os.mkdir(directory)
comm.Barrier()

data_path = os.path.join(directory, f"data.{rank}")
with open(data_path, "wb") as f:
    f.write(payload(rank, 200_000))
    f.write(payload(rank + 100, 1234))
text_path = os.path.join(directory, f"text.{rank}")
with open(text_path, "w") as f:
    for i in range(100):
        print(f"rank {rank} line {i}", file=f)
comm.Barrier()

for owner in range(size):
    path = os.path.join(directory, f"data.{owner}")
    with open(path, "rb") as f:
        check(f.read(200_000) == payload(owner, 200_000), f"first part of {path}")
        check(f.read() == payload(owner + 100, 1234), f"second part of {path}")
        f.seek(1000)
        check(f.read(10) == payload(owner, 200_000)[1000:1010], f"seek and read in {path}")
    check(os.stat(path).st_size == 201_234, f"size of {path}")
    with open(os.path.join(directory, f"text.{owner}")) as f:
        check(f.read().splitlines() == [f"rank {owner} line {i}" for i in range(100)], f"lines of text.{owner}")

names = sorted(os.listdir(directory))
check(names == sorted([f"data.{r}" for r in range(size)] + [f"text.{r}" for r in range(size)]), f"listing {names}")
with os.scandir(directory) as entries:
    check(sum(1 for e in entries if e.is_file()) == 2 * size, "scandir")
check(os.path.isdir(directory) and os.path.exists(data_path), "os.path")
comm.Barrier()

moved = os.path.join(directory, f"moved.{rank}")
os.rename(text_path, moved)
check(not os.path.exists(text_path) and os.path.exists(moved), "rename")
with open(data_path, "ab") as f:
    f.write(b"appended")
with open(data_path, "rb") as f:
    check(f.read()[-8:] == b"appended", "append")
os.remove(moved)
os.remove(data_path)
comm.Barrier()
if rank == 0:
    os.rmdir(directory)
    check(not os.path.exists(directory), "rmdir")

totals = comm.reduce((passed, failed), op=lambda a, b, _=None: (a[0] + b[0], a[1] + b[1]), root=0)
if rank == 0:
    print(f"python_files: {totals[0]} passed, {totals[1]} failed", flush=True)

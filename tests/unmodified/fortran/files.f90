! An ordinary Fortran MPI program: every rank writes a formatted file and an unformatted
! stream file in a directory given on the command line, then reads back and checks the next
! rank's files value for value, and deletes its own.
!
!   files DIR [LOCAL_DIR]    (LOCAL_DIR is not used)
!
! Ends with "fortran_files: P passed, F failed" from rank 0.
program files
  use mpi
  use iso_c_binding, only: c_int, c_char, c_null_char
  implicit none
  interface
    integer(c_int) function c_mkdir(path, mode) bind(C, name='mkdir')
      import :: c_int, c_char
      character(kind=c_char), dimension(*), intent(in) :: path
      integer(c_int), value :: mode
    end function c_mkdir
    integer(c_int) function c_rmdir(path) bind(C, name='rmdir')
      import :: c_int, c_char
      character(kind=c_char), dimension(*), intent(in) :: path
    end function c_rmdir
  end interface
  integer, parameter :: n = 1000
  integer :: ierr, rank, nranks, next, u, i, v, passed, failed, counts(2), totals(2)
  integer :: values(n)
  character(len=512) :: dir, path

  call mpi_init(ierr)
  call mpi_comm_rank(MPI_COMM_WORLD, rank, ierr)
  call mpi_comm_size(MPI_COMM_WORLD, nranks, ierr)
  call get_command_argument(1, dir)
  passed = 0
  failed = 0
  next = mod(rank + 1, nranks)
  if (rank == 0) call check(c_mkdir(trim(dir) // c_null_char, int(o'755', c_int)) == 0)
  call mpi_barrier(MPI_COMM_WORLD, ierr)

  write(path, '(A,A,I0)') trim(dir), '/text.', rank
  open(newunit=u, file=trim(path), status='replace', action='write')
  do i = 1, n
    write(u, '(I0)') rank * 100000 + i
  end do
  close(u)
  write(path, '(A,A,I0)') trim(dir), '/stream.', rank
  open(newunit=u, file=trim(path), status='replace', access='stream', form='unformatted')
  write(u) [(rank * 7 + i * 3, i = 1, n)]
  close(u)
  call mpi_barrier(MPI_COMM_WORLD, ierr)

  write(path, '(A,A,I0)') trim(dir), '/text.', next
  open(newunit=u, file=trim(path), status='old', action='read')
  do i = 1, n
    read(u, *) v
    call check(v == next * 100000 + i)
  end do
  close(u)
  write(path, '(A,A,I0)') trim(dir), '/stream.', next
  open(newunit=u, file=trim(path), status='old', access='stream', form='unformatted', action='read')
  read(u) values
  call check(all(values == [(next * 7 + i * 3, i = 1, n)]))
  close(u)
  call mpi_barrier(MPI_COMM_WORLD, ierr)

  write(path, '(A,A,I0)') trim(dir), '/text.', rank
  open(newunit=u, file=trim(path), status='old')
  close(u, status='delete')
  write(path, '(A,A,I0)') trim(dir), '/stream.', rank
  open(newunit=u, file=trim(path), status='old')
  close(u, status='delete')

  call mpi_barrier(MPI_COMM_WORLD, ierr)
  if (rank == 0) call check(c_rmdir(trim(dir) // c_null_char) == 0)

  counts = [passed, failed]
  call mpi_reduce(counts, totals, 2, MPI_INTEGER, MPI_SUM, 0, MPI_COMM_WORLD, ierr)
  if (rank == 0) print '(A,I0,A,I0,A)', 'fortran_files: ', totals(1), ' passed, ', totals(2), ' failed'
  call mpi_finalize(ierr)

contains

  subroutine check(ok)
    logical, intent(in) :: ok
    if (ok) then
      passed = passed + 1
    else
      failed = failed + 1
    end if
  end subroutine check
end program files

# ringrl Python zygote: a warm interpreter that forks one child per run.
#
# Started by src/reward/sandbox/process.ts (inside bubblewrap when available, as PID 1 of its own
# PID namespace). It reads one JSON request per line on stdin and answers one JSON line on stdout.
# A request runs Python code in a forked child ('python'), pytest in a forked child ('pytest', pytest
# imported into the zygote on first use), or a list of commands ('exec': compile, then run), each
# step a forked child that sets its limits and execs the command.
# Each child: fresh working directory, rlimits (CPU, address space, processes, file size, open
# files, no core), scrubbed environment (inherited from bwrap --clearenv), stdin from a memfd,
# stdout/stderr through capped pipes. After each run nothing of it lives on: every other process
# in the namespace is killed (kill(-1) from PID 1 reaches all of them, including children that
# called setsid), or, for a Python run forked by the template (below), the template shows that
# nothing is left; and the writable places (/work, /tmp, /dev/shm) are emptied, so no run sees
# another run's files.
# Latency: the child of the next run is forked ahead of time, once the last run is cleaned up (a
# "spare": its own session, its output pipes in place, the zygote's descriptors closed), and waits
# for its job on a pipe; the answer goes out before the writable places are wiped. A Python
# child reports its exit code and CPU time on a status pipe before it exits, so the answer does not
# wait for the kernel to tear down its copy of the zygote's address space (~1 ms).
# CPU: under bubblewrap, Python runs are forked by a second process, the template (see TEMPLATE),
# so that the zygote's own work between runs copies no pages; children skip os.fork's at-fork
# handlers (see RAW_FORK). Before the first fork the zygote runs a small program itself, so every
# child inherits a warm compiler and text layers instead of paying for their first use (about
# 1.5 ms a run).
# The zygote and the template are non-dumpable, so a child cannot open /proc/1/fd and forge
# answers, and as PID 1 the zygote receives no signal from inside the namespace that it has not
# asked for (the template can be killed or stopped by a program: it is then replaced).
import _random, _signal, binascii, builtins, ctypes, errno, gc, io, json, marshal, os, resource, select, signal, struct, sys, time, traceback
# Warm imports: a child pays nothing for these.
import bisect, collections, copy, datetime, decimal, fractions, functools, heapq, itertools, math, operator, random, re, statistics, string, typing  # noqa: F401

PID1 = os.getpid() == 1
WORKROOT = sys.argv[1] if len(sys.argv) > 1 else '/work'
SCRATCH = ['/tmp', '/dev/shm'] if PID1 else []

LIBC = ctypes.CDLL(None, use_errno=True)
# fork(2) itself, without os.fork's at-fork handlers: random's (the one registered here) reseeds
# through Python code that touches ~70 pages each child then copies; children reseed in C (raw_fork).
RAW_FORK = ctypes.PyDLL(None, use_errno=True).fork
try:
    LIBC.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0
except Exception:
    pass
signal.signal(signal.SIGINT, signal.SIG_IGN)

CTL_IN = os.dup(0)
CTL_OUT = os.dup(1)
_null = os.open('/dev/null', os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(_null, fd)
os.close(_null)


def write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]


def send(obj):
    write_all(CTL_OUT, (json.dumps(obj) + '\n').encode())


def wipe(path, keep_root=True):
    """Remove everything under `path` (and `path` itself unless keep_root), also what a program
    made unreadable or unwritable: each directory is made ours (0700) before it is listed."""
    stack = [(path, False)]
    while stack:
        d, listed = stack.pop()
        if listed:
            if d != path or not keep_root:
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            continue
        stack.append((d, True))
        try:
            if d != path:
                os.chmod(d, 0o700)
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    stack.append((e.path, False))
                else:
                    os.unlink(e.path)
            except OSError:
                pass


WRITABLE = ('/tmp', '/dev/shm', '/work')


def safe_path(root, name):
    """Where a request's file name lives. Relative names are inside the run's directory. Absolute
    names under /tmp, /dev/shm or /work are used as they are when this zygote owns a private
    namespace (PID 1 under bubblewrap); any other absolute name is mapped under the run's directory."""
    if name.startswith('/'):
        p = os.path.normpath(name)
        if PID1 and any(p.startswith(w + '/') for w in WRITABLE):
            return p
        name = p.lstrip('/')
    p = os.path.normpath(os.path.join(root, name))
    if not p.startswith(root + '/'):
        raise ValueError('file name escapes the working directory: ' + name)
    return p


def detach(out_w, err_w, keep):
    """A spare's preparation before it has a job: its own session, stdout/stderr on the run's
    pipes, no descriptor of the zygote's but those in `keep` (its job and status pipes)."""
    os.setsid()
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    close_all_but(keep)


def close_all_but(keep):
    """Close every descriptor above stderr but those in `keep`."""
    low = 3
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, FD_CEILING)


# No descriptor of the zygote's is numbered FD_CEILING or above (its soft limit, set below; those
# inherited above it are closed at start), so closing up to it closes them all: one close_range(2)
# where CPython uses it, at worst a close() per number below the ceiling where it falls back
# (CPython built without it, a seccomp filter refusing it) instead of one per number up to 2^31.
FD_CEILING = 1024


def cap_descriptors():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft > FD_CEILING:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_CEILING, hard))
    for name in os.listdir('/proc/self/fd'):
        if int(name) >= FD_CEILING:
            try:
                os.close(int(name))
            except OSError:
                pass


cap_descriptors()


def setup_child(rundir, stdin_bytes, lim, memory_kind):
    """The job's confinement: stdin from a memfd, its directory, umask and rlimits."""
    stdin_fd = os.memfd_create('stdin')
    write_all(stdin_fd, stdin_bytes)
    os.lseek(stdin_fd, 0, 0)
    os.dup2(stdin_fd, 0)
    os.close(stdin_fd)
    os.chdir(rundir)
    os.umask(0o077)
    cpu = max(1, int((lim['cpu_ms'] + 999) // 1000))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    mem = lim['memory_mb'] * 1024 * 1024
    # Address space for programs that reserve little of it; data segment for runtimes (JVM, Go)
    # that reserve far more address space than they use.
    resource.setrlimit(resource.RLIMIT_DATA if memory_kind == 'data' else resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_NPROC, (lim['processes'], lim['processes']))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim['file_bytes'], lim['file_bytes']))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def exec_child(job):
    try:
        setup_child(job['rundir'], job['stdin'], job['limits'], job.get('memory_kind'))
        _signal.signal(signal.SIGINT, _signal.SIG_DFL)
        _signal.signal(signal.SIGPIPE, _signal.SIG_DFL)
        rundir = job['rundir']
        env = {'PATH': '/usr/local/bin:/usr/bin:/bin', 'HOME': rundir, 'TMPDIR': '/tmp' if PID1 else rundir, 'LANG': 'C.UTF-8'}
        env.update(job.get('env') or {})
        argv = job['argv']
        os.execve(argv[0], argv, env)
    except BaseException as e:
        try:
            os.write(2, ('ringrl sandbox: cannot run %s: %s\n' % (job['argv'][0], e)).encode())
        except BaseException:
            pass
    os._exit(127)


def std_streams():
    """sys.stdin/stdout/stderr of a Python run, made once by the zygote (never used there) and
    inherited by every child: the wrappers hold only the descriptor numbers, which the child
    points at its pipes and the job's stdin memfd."""
    return (
        io.TextIOWrapper(io.FileIO(0, 'r', closefd=False), encoding='utf-8'),
        io.TextIOWrapper(io.FileIO(1, 'w', closefd=False), encoding='utf-8'),
        io.TextIOWrapper(io.FileIO(2, 'w', closefd=False), encoding='utf-8', errors='backslashreplace', line_buffering=True),
    )


STREAMS = std_streams()
# The zygote's own stdio objects stay referenced here, so a child that switches to STREAMS frees
# nothing (freeing them would touch, and copy, a few dozen of the zygote's pages).
ZYGOTE_STDIO = (sys.stdin, sys.stdout, sys.stderr)
STATUS = struct.Struct('<iq')  # exit code, CPU microseconds (the process and the children it reaped)


def status_record(record):
    """(exit code, CPU us) from the status pipe, or None for bytes that are not a child's record
    (the program itself can write to the pipe: it then only garbles its own result)."""
    if len(record) != STATUS.size:
        return None
    rc, cpu = STATUS.unpack(record)
    return (rc, cpu) if 0 <= rc <= 255 and cpu >= 0 else None


def finish(rc, status_w):
    """Report the exit code and CPU time on the status pipe, then exit. The output is flushed by
    then: what the program wrote is in the pipes when the zygote reads the status."""
    try:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
        os.write(status_w, STATUS.pack(rc & 0xFF, int(cpu * 1e6)))
    except BaseException:
        pass
    os._exit(rc & 0xFF)


def child(req, status_w):
    rc = 1
    try:
        rundir = req['rundir']
        setup_child(rundir, req['stdin'], req['limits'], 'as')
        # _signal, not signal: the enum wrapping of signal.signal touches ~30 pages a child would copy.
        _signal.signal(signal.SIGINT, _signal.default_int_handler)
        sys.stdin, sys.stdout, sys.stderr = STREAMS
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
        filename = os.path.join(rundir, req.get('source') or 'main.py')
        sys.argv = [filename]
        sys.path.insert(0, rundir)
        code, epilogue, mode = req['code'], req.get('epilogue'), req.get('mode')
        # The job dict is shared with the caller's frame: empty it before the program runs.
        req.clear()
        if mode == 'pytest':
            code = None
            try:
                rc = int(PYTEST.main(['-q', '-p', 'no:cacheprovider', filename]))
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else 1
            return
        scope = {'__name__': '__main__', '__file__': filename, '__builtins__': builtins}
        try:
            program = compile(code, filename, 'exec')
            # The tests are a separate code object, so the program's own constants do not hold
            # the tests' nonce.
            tests = compile(epilogue, '<tests>', 'exec') if epilogue else None
            code = epilogue = None
            exec(program, scope)
            if tests is not None:
                exec(tests, scope)
            rc = 0
        except SystemExit as e:
            if e.code is None:
                rc = 0
            elif isinstance(e.code, int):
                rc = e.code & 0xFF
            else:
                print(e.code, file=sys.stderr)
                rc = 1
        except BaseException as e:
            # Skip the zygote's own frame so the traceback reads like `python3 main.py`.
            traceback.print_exception(type(e), e, e.__traceback__.tb_next if e.__traceback__ else None)
            rc = 1
    except BaseException:
        try:
            traceback.print_exc()
        except BaseException:
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        finish(rc, status_w)


def kill_rest(pid):
    if PID1:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        forget_template()
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def reap_all():
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


SPARE = None


def reap_dead():
    """Reap the children that have exited (not the live spare)."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


JOB_LENGTH = struct.Struct('<I')


def read_exactly(fd, n):
    """n bytes from fd, or None at end of file."""
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b''.join(chunks)


def spare_main(job_r, out_w, err_w, status_w):
    """A spare child: wait for its job (its length, then marshal, on the job pipe), then become it."""
    try:
        detach(out_w, err_w, (job_r, status_w))
        header = read_exactly(job_r, JOB_LENGTH.size)
        if header is None:
            os._exit(0)  # discarded unused
        job = marshal.loads(read_exactly(job_r, JOB_LENGTH.unpack(header)[0]))
        os.close(job_r)
        if job['kind'] == 'exec':
            os.close(status_w)
            exec_child(job)
        else:
            child(job, status_w)
    except BaseException:
        try:
            traceback.print_exc()
        except BaseException:
            pass
    os._exit(127)


def raw_fork():
    """fork(2) for spares: the child reseeds `random` itself (see RAW_FORK)."""
    pid = RAW_FORK()
    if pid < 0:
        raise OSError(ctypes.get_errno(), 'fork failed')
    if pid == 0:
        _random.Random.seed(random._inst)
    return pid


def fork_spare():
    """Fork the child of the next step now; it waits for its job (see spare_main)."""
    job_r, job_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    status_r, status_w = os.pipe()
    pid = raw_fork()
    if pid == 0:
        spare_main(job_r, out_w, err_w, status_w)
    for fd in (job_r, out_w, err_w, status_w):
        os.close(fd)
    return {'pid': pid, 'job_w': job_w, 'out_r': out_r, 'err_r': err_r, 'status_r': status_r, 'pytest': PYTEST is not None}


def exec_job(rundir, step, stdin):
    """What a child that execs one step of a request is handed (see exec_child)."""
    return {
        'kind': 'exec',
        'rundir': rundir,
        'stdin': stdin,
        'argv': step['argv'],
        'env': step.get('env') or {},
        'memory_kind': step.get('memory_kind'),
        'limits': step['limits'],
    }


def discard_spare(reap=True):
    """Let the spare go unused and reap it (now, or with reap=False once the answer is out)."""
    global SPARE
    spare, SPARE = SPARE, None
    if spare is not None:
        os.close(spare['job_w'])
        discard(spare, reap)


def ensure_spare():
    """Fork the next child ahead of time, if there is none (on failure the next step forks it)."""
    global SPARE
    if SPARE is None:
        try:
            SPARE = fork_spare()
        except OSError:
            pass


def take_spare(needs_pytest):
    """The spare for this step (forked now if there is none, or if it predates the pytest import)."""
    global SPARE
    if SPARE is not None and needs_pytest and not SPARE['pytest']:
        discard_spare()
    spare, SPARE = SPARE or fork_spare(), None
    return spare


def hand_over(spare, job):
    """Write the job to the spare; False when the spare is gone (then it is reaped)."""
    data = marshal.dumps(job)
    try:
        write_all(spare['job_w'], JOB_LENGTH.pack(len(data)) + data)
        return True
    except OSError:
        return False
    finally:
        if not spare.get('template'):
            os.close(spare['job_w'])


# Children that reported their status and were killed, reaped once the answer is out.
UNREAPED = []


def run_step(job, lim, started=None, session=False):
    """Run one job in a spare child (or in `started`, a child already given its job), collect its
    capped output until it exits (or reports its status), passes the wall limit or the output
    cap, then kill everything else in the namespace. session=True (a toolchain step whose
    processes stay in the child's session and run none of the program's code): kill that session
    only, so the next step's spare, forked while this step runs, lives on."""
    cap = lim['output_bytes']
    start = time.monotonic()
    spare = started or take_spare(job.get('mode') == 'pytest')
    if started is None and not hand_over(spare, job):
        # The spare died before its job (killed from outside): reap it (a zombie till then, so
        # its pid is still its own to kill), fork a fresh one.
        discard(spare)
        spare = fork_spare()
        if not hand_over(spare, job):
            raise RuntimeError('the child died before its job')
    pid, out_r, err_r, status_r = spare['pid'], spare['out_r'], spare['err_r'], spare['status_r']
    job = None
    if session:
        ensure_spare()  # the next step's child, forked while this one runs
    pidfd = os.pidfd_open(pid)
    bufs = {out_r: bytearray(), err_r: bytearray()}
    open_fds = {out_r, err_r}
    waiting = [pidfd, status_r]
    deadline = start + lim['wall_ms'] / 1000.0
    timed_out = output_exceeded = False
    status = rusage = reported = None
    while status is None and reported is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        ready, _, _ = select.select(list(open_fds) + waiting, [], [], remaining)
        for fd in ready:
            if fd == pidfd:
                _, status, rusage = os.wait4(pid, 0)
                continue
            if fd == status_r:
                record = os.read(status_r, STATUS.size)
                if not record:
                    waiting.remove(status_r)  # exec'd, or died without a word: wait for its exit
                else:
                    reported = status_record(record)
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.discard(fd)
                continue
            bufs[fd] += chunk
            if len(bufs[fd]) > cap:
                output_exceeded = True
        if output_exceeded:
            break
    # The main program is done (or over a limit): nothing else from this run may live on.
    if session:
        kill_session(pid)
    else:
        kill_rest(pid)
    if reported is not None and status is None:
        UNREAPED.append(pid)  # exiting already; reaped after the answer
    elif status is None:
        _, status, rusage = os.wait4(pid, 0)
    wall_ms = (time.monotonic() - start) * 1000.0
    if reported is not None:
        # The program's own output is all in the pipes; take what is there, without waiting for
        # the processes just killed to close their ends.
        output_exceeded = take_available(open_fds, bufs, cap) or output_exceeded
        open_fds = ()
    # Drain what grandchildren wrote before they were killed; their pipe ends are closed now.
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [], 0.5)
        if not ready:
            break
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk or len(bufs[fd]) > cap:
                open_fds.discard(fd)
            else:
                bufs[fd] += chunk
    if session:
        reap_dead()
    elif PID1 and (reported is None or status is not None):
        reap_all()
    for fd in (out_r, err_r, status_r, pidfd):
        os.close(fd)
    if status is not None:
        cpu_ms = (rusage.ru_utime + rusage.ru_stime) * 1000.0 if rusage else None
        return step_result(status, None, cpu_ms, timed_out, output_exceeded, wall_ms, bufs[out_r], bufs[err_r], cap)
    return step_result(None, reported[0], reported[1] / 1000.0, timed_out, output_exceeded, wall_ms, bufs[out_r], bufs[err_r], cap)


def take_available(fds, bufs, cap):
    """Read what the pipes hold now, without waiting for writers to close them; True when a
    buffer went over the cap."""
    over = False
    for fd in fds:
        os.set_blocking(fd, False)
        try:
            while len(bufs[fd]) <= cap:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                bufs[fd] += chunk
        except BlockingIOError:
            pass
        finally:
            os.set_blocking(fd, True)
        over = over or len(bufs[fd]) > cap
    return over


def step_result(status, exit_code, cpu_ms, timed_out, output_exceeded, wall_ms, out, err, cap):
    """A step's answer; `status` (a wait status) when the step was reaped, else the exit code it reported."""
    sig = None
    if status is not None:
        exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    return {
        'exit_code': exit_code,
        'signal': sig,
        'timed_out': timed_out,
        'output_exceeded': output_exceeded,
        'wall_ms': wall_ms,
        'cpu_ms': cpu_ms,
        'stdout': bytes(out[:cap]).decode('utf-8', 'replace'),
        'stderr': bytes(err[:cap]).decode('utf-8', 'replace'),
    }


# The template (PID 1 only): Python runs are forked from a second process instead of from this
# one. A fork write-protects every page of the forking process for as long as the child lives,
# and this process's own work between forks (parsing the request, answering, tidying) wrote
# ~220 pages a run, each of them then copied (~2 us a page on a VM): the template's loop writes ~50.
# The template forks a spare, names it on the report pipe, reaps it once it has run, and reports
# how it ended and whether anything of the run is left: the template is a subreaper, so processes
# the run left behind are its children. The pipes between the template's children and this process
# (job, stdout, stderr, status) are shared by every run, so they are reused only after a clean
# run, once drained; anything else (a timeout, an output cap, leftovers, a template a program
# killed or stopped) ends in kill(-1), which takes the template too, and a new template.
TEMPLATE = None
REPORT = struct.Struct('<ciiqi')  # b'p' (a spare is ready) or b's' (it ended), pid, wait status, CPU us, clean
GRACE_S = 2.0  # how long a clean run's end may take to be reported before the run counts as not clean


def start_template():
    global TEMPLATE
    job_r, job_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    status_r, status_w = os.pipe()
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            template_main(job_r, out_w, err_w, status_w, report_w)
        finally:
            os._exit(0)
    for fd in (job_r, out_w, err_w, status_w, report_w):
        os.close(fd)
    TEMPLATE = {'template': True, 'job_w': job_w, 'out_r': out_r, 'err_r': err_r,
                'status_r': status_r, 'report_r': report_r}


def template_main(job_r, out_w, err_w, status_w, report_w):
    LIBC.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    try:
        children = os.open('/proc/self/task/%d/children' % os.getpid(), os.O_RDONLY)
    except OSError:
        children = None  # a kernel without CONFIG_PROC_CHILDREN
    close_all_but((job_r, out_w, err_w, status_w, report_w) + ((children,) if children is not None else ()))
    while True:
        pid = raw_fork()
        if pid == 0:
            spare_main(job_r, out_w, err_w, status_w)
        os.write(report_w, REPORT.pack(b'p', pid, 0, 0, 0))
        _, status, usage = os.wait4(pid, 0)
        # Anything left of the run is a child of ours now (a subreaper's): none, or only dead
        # ones, once reaped, is clean. The list of our children, read again from its start, says
        # so without raising ChildProcessError (whose making copies ~10 pages).
        clean = 1
        while children is None or os.pread(children, 1, 0):
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    clean = 0  # something of the run still lives
                    break
            except ChildProcessError:
                break
        os.write(report_w, REPORT.pack(b's', pid, status, int((usage.ru_utime + usage.ru_stime) * 1e6), clean))


def template_report(timeout=None):
    """The template's next record, or None when it is gone (or says nothing within `timeout`)."""
    fd = TEMPLATE['report_r']
    if timeout is not None and not select.select([fd], [], [], timeout)[0]:
        return None
    record = read_exactly(fd, REPORT.size)
    return REPORT.unpack(record) if record else None


def forget_template():
    """The template is gone, or going (kill(-1) reaches it too): close our ends of its pipes."""
    global TEMPLATE
    t, TEMPLATE = TEMPLATE, None
    if t is not None:
        for key in ('job_w', 'out_r', 'err_r', 'status_r', 'report_r'):
            os.close(t[key])


def clear_namespace():
    """PID 1: kill everything in the namespace but this process (the template too) and reap it."""
    kill_rest(None)
    reap_all()


def run_templated(job, lim):
    """run_step for a Python job, in a spare of the template. The answer may go out before the
    run's process is reaped; `finish_templated` then decides whether the template stays."""
    t = TEMPLATE
    cap = lim['output_bytes']
    start = time.monotonic()
    ready = template_report()
    if ready is None or ready[0] != b'p' or not hand_over(t, job):
        clear_namespace()
        return run_step(job, lim)
    pid = ready[1]
    job = None
    out_r, err_r, status_r, report_r = t['out_r'], t['err_r'], t['status_r'], t['report_r']
    bufs = {out_r: bytearray(), err_r: bytearray()}
    open_fds = [out_r, err_r, status_r, report_r]
    deadline = start + lim['wall_ms'] / 1000.0
    timed_out = output_exceeded = False
    ended = reported = pidfd = None
    clean = True
    while reported is None and ended is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        for fd in select.select(open_fds, [], [], remaining)[0]:
            if fd == status_r:
                record = os.read(status_r, STATUS.size)
                reported = status_record(record)
                if not record:
                    open_fds.remove(fd)  # the template is gone, and the child has closed its end
                elif reported is None:
                    clean = False  # not a record of ours
            elif fd == report_r:
                ended = template_report()
                if ended is None:
                    # The template is gone (the program killed it); the child is ours now: wait
                    # for its status or its exit.
                    clean = False
                    open_fds.remove(fd)
                    try:
                        pidfd = os.pidfd_open(pid)
                        open_fds.append(pidfd)
                    except ProcessLookupError:
                        ended = (b's', pid, -1, 0, 0)
            elif fd == pidfd:
                try:
                    _, status, usage = os.wait4(pid, 0)
                    ended = (b's', pid, status, int((usage.ru_utime + usage.ru_stime) * 1e6), 0)
                except ChildProcessError:
                    ended = (b's', pid, -1, 0, 0)
            else:
                chunk = os.read(fd, 65536)
                if not chunk:  # only once the template is gone
                    open_fds.remove(fd)
                bufs[fd] += chunk
                output_exceeded = output_exceeded or len(bufs[fd]) > cap
        if output_exceeded:
            break
    if pidfd is not None:
        os.close(pidfd)
    # What finish_templated needs once the answer is out.
    t['ended'], t['clean'] = ended, clean
    if ended is not None and (ended[1] != pid or ended[0] != b's'):
        raise RuntimeError('the template reported another child')
    if reported is None and ended is None:
        kill_session(pid)  # over a limit
    wall_ms = (time.monotonic() - start) * 1000.0
    output_exceeded = take_available((out_r, err_r), bufs, cap) or output_exceeded
    if reported is None and (ended is None or not ended[4] or ended[2] < 0):
        clear_namespace()  # over a limit, or it ended leaving something behind
    if reported is not None:
        return step_result(None, reported[0], reported[1] / 1000.0, timed_out, output_exceeded, wall_ms, bufs[out_r], bufs[err_r], cap)
    # Killed here (a limit): the wait status of a SIGKILL is the signal's number.
    status = ended[2] if ended is not None and ended[2] >= 0 else (signal.SIGKILL if ended is None else None)
    cpu_ms = ended[3] / 1000.0 if ended is not None else None
    return step_result(status, None, cpu_ms, timed_out, output_exceeded, wall_ms, bufs[out_r], bufs[err_r], cap)


def finish_templated():
    """After the answer of a templated run: wait for the template's word on how the run ended; keep
    the template only if nothing is left of the run, with its shared pipes emptied."""
    t = TEMPLATE
    if t is None:
        return
    ended = t.pop('ended', None) or template_report(GRACE_S)
    clean = t.pop('clean', True)
    if not clean or ended is None or ended[0] != b's' or not ended[4]:
        clear_namespace()
        return
    scrap = {t['out_r']: bytearray(), t['err_r']: bytearray(), t['status_r']: bytearray()}
    take_available(scrap, scrap, 1 << 30)


def settle():
    """Reap what the last run left (after its answer went out)."""
    while UNREAPED:
        try:
            os.waitpid(UNREAPED.pop(), 0)
        except ChildProcessError:
            pass
    if TEMPLATE is not None:
        finish_templated()
        reap_dead()
    elif PID1:
        reap_all()


# A compile step started ahead of the request that needs it (PID 1 only): forked and exec'd with
# its limits, blocked opening the source, a FIFO, until the next request brings the code. Used
# when the next request's compile step is the same command with the same limits; discarded
# (killed with everything it started) before any other request runs.
PRESTART = None


def prestart(req, rundir):
    """Start the compile step of `req` for the next request (see PRESTART)."""
    global PRESTART
    step = req['steps'][0]
    path = os.path.join(rundir, req.get('source') or 'main.c')
    try:
        os.mkfifo(path, 0o600)
        make_fifos(rundir, step)
        spare = fork_spare()
    except OSError:
        return
    if hand_over(spare, exec_job(rundir, step, b'')):
        PRESTART = {'spare': spare, 'step': step, 'path': path}
    else:
        discard(spare)


def kill_session(pid):
    """Kill a child and all it started: the child first (it may not have started its own session
    yet, and cannot start anything more once killed), then its session."""
    for kill in (os.kill, os.killpg):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


def discard(spare, reap=True):
    """Kill a child and all it started, close its pipes and reap it (now, or with reap=False once
    the answer is out)."""
    kill_session(spare['pid'])
    for fd in (spare['out_r'], spare['err_r'], spare['status_r']):
        os.close(fd)
    if not reap:
        UNREAPED.append(spare['pid'])
        return
    try:
        os.waitpid(spare['pid'], 0)
    except ChildProcessError:
        pass


def make_fifos(rundir, step):
    remove_fifos(rundir, step)
    for name in step.get('fifos') or []:
        os.mkfifo(safe_path(rundir, name), 0o600)


def remove_fifos(rundir, step):
    for name in step.get('fifos') or []:
        try:
            os.unlink(safe_path(rundir, name))
        except OSError:
            pass


def take_prestart(req, rundir):
    """The prestarted compile step if this request's first step is the same, else None (and
    whatever was prestarted is gone)."""
    global PRESTART
    pre, PRESTART = PRESTART, None
    if pre is None:
        return None
    steps = req.get('steps') or []
    if (req.get('mode') == 'exec' and steps and steps[0] == pre['step']
            and pre['path'] == os.path.join(rundir, req.get('source') or 'main.c')):
        return pre
    discard(pre['spare'])
    try:
        os.unlink(pre['path'])
    except OSError:
        pass
    remove_fifos(os.path.dirname(pre['path']), pre['step'])
    return None


def feed(pre, data):
    """Give the prestarted compiler its source through the FIFO; a regular file with the same
    bytes takes the FIFO's name before the compiler sees the end (diagnostics re-read the source
    by name). False when the compiler is gone."""
    path = pre['path']
    deadline = time.monotonic() + 10
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as e:
            # ENXIO: the compiler has not opened its source yet (still starting) or is gone.
            if e.errno != errno.ENXIO or time.monotonic() > deadline or os.waitpid(pre['spare']['pid'], os.WNOHANG)[0]:
                return False
            time.sleep(0.0002)
    try:
        os.unlink(path)
        write_file(path, data)
        os.set_blocking(fd, True)
        write_all(fd, data)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


PYTEST = None
ARTIFACT_BYTES = 16 << 20


def collect(rundir, patterns):
    """The compiler's outputs (regular files in the run's directory matching the patterns), base64,
    for the host's compile cache; nothing when they are too big to keep."""
    import fnmatch
    out, total = {}, 0
    for name in sorted(os.listdir(rundir)):
        p = os.path.join(rundir, name)
        if not any(fnmatch.fnmatch(name, pat) for pat in patterns) or os.path.islink(p) or not os.path.isfile(p):
            continue
        total += os.path.getsize(p)
        if total > ARTIFACT_BYTES:
            return {}
        with open(p, 'rb') as f:
            out[name] = binascii.b2a_base64(f.read(), newline=False).decode()
    return out



def write_file(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def run(req, rundir):
    global PYTEST
    mode = req.get('mode') or 'python'
    if mode == 'pytest' and PYTEST is None:
        # Imported once, here in the zygote: later pytest runs of this zygote fork it warm.
        import pytest
        PYTEST = pytest
        gc.collect()
        gc.freeze()
    pre = take_prestart(req, rundir)
    if pre is not None:
        if not pre['step'].get('own_session'):
            discard_spare(reap=False)  # killed with the namespace after the compile anyway
        if not feed(pre, req['code'].encode()):
            discard(pre['spare'])
            pre = None
            try:
                os.unlink(os.path.join(rundir, req.get('source') or 'main.c'))
            except OSError:
                pass
    if pre is None:
        write_file(os.path.join(rundir, req.get('source') or 'main.py'), req['code'].encode())
    executable = set(req.get('executable') or [])
    for name, b64 in (req.get('files') or {}).items():
        p = safe_path(rundir, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(binascii.a2b_base64(b64))
        if name in executable:
            os.chmod(p, 0o755)
    stdin = (req.get('stdin') or '').encode()
    steps = []
    artifacts = {}
    if mode == 'exec':
        for i, step in enumerate(req['steps']):
            job = exec_job(rundir, step, stdin if step.get('stdin') else b'')
            if pre is None or i > 0:
                make_fifos(rundir, step)
            session = bool(step.get('own_session')) and i + 1 < len(req['steps'])
            r = run_step(job, step['limits'], pre['spare'] if pre is not None and i == 0 else None, session)
            remove_fifos(rundir, step)
            steps.append(r)
            if r['exit_code'] != 0:
                if session:
                    # No next step: its spare goes, and so does everything else, as after any last step.
                    discard_spare()
                    if PID1:
                        clear_namespace()
                break
            if i + 1 < len(req['steps']):
                ensure_spare()  # the run step's child starts while the compiler's outputs are read
            if i == 0 and req.get('artifacts'):
                artifacts = collect(rundir, req['artifacts'])
    else:
        job = {
            'kind': 'python',
            'mode': mode,
            'rundir': rundir,
            'stdin': stdin,
            'code': req['code'],
            'epilogue': req.get('epilogue'),
            'source': req.get('source'),
            'limits': req['limits'],
        }
        templated = TEMPLATE is not None and mode == 'python'
        steps.append(run_templated(job, req['limits']) if templated else run_step(job, req['limits']))
    files = {}
    for name in req.get('fetch_files') or []:
        try:
            p = safe_path(rundir, name)
            if os.path.isfile(p) and os.path.getsize(p) <= 1 << 20:
                with open(p, 'rb') as f:
                    files[name] = binascii.b2a_base64(f.read(), newline=False).decode()
        except Exception:
            pass
    return {'id': req['id'], 'steps': steps, 'files': files, 'artifacts': artifacts}


def tidy(rundir):
    """Empty the writable places for the next run (after the answer has gone out)."""
    # A program may have chmod-ed the shared places; restore them before wiping.
    for d, perm in ((WORKROOT, 0o755), ("/tmp", 0o1777), ("/dev/shm", 0o1777)):
        if PID1 or d == WORKROOT:
            try:
                os.chmod(d, perm)
            except OSError:
                pass
    wipe(rundir, keep_root=PID1)
    for d in SCRATCH:
        wipe(d)


def prewarm():
    """Run a small program here, once, so that children inherit a used compiler, text layers and
    traceback printer: their first use costs a fresh child about 1.5 ms."""
    r, w = os.pipe()
    os.write(w, b'2 3\n')
    os.close(w)
    saved = sys.stdin, sys.stdout, sys.stderr
    try:
        sys.stdin = io.TextIOWrapper(io.FileIO(r, 'r', closefd=False), encoding='utf-8')
        sys.stdout = io.TextIOWrapper(io.BytesIO(), encoding='utf-8')
        sys.stderr = io.TextIOWrapper(io.BytesIO(), encoding='utf-8', errors='backslashreplace', line_buffering=True)
        scope = {'__name__': '__main__', '__builtins__': builtins}
        exec(compile('a, b = map(int, input().split())\nprint(a + b)\n', 'main.py', 'exec'), scope)
        try:
            exec(compile('def f():\n    raise ValueError(1)\nf()\n', 'main.py', 'exec'), scope)
        except ValueError as e:
            traceback.print_exception(type(e), e, e.__traceback__)
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
        os.close(r)


def next_child(mode):
    """Have the next run's child ready: after a Python run, in a private namespace, the template's
    (started if there is none); else a spare forked here."""
    if PID1 and mode == 'python':
        if TEMPLATE is None:
            start_template()
    else:
        ensure_spare()


def main():
    prewarm()
    # Freeze the warm heap: the garbage collector in a child then never walks (and copies) it.
    gc.collect()
    gc.freeze()
    next_child('python')
    send({'ready': True, 'pid1': PID1})
    ctl = io.open(CTL_IN, 'rb', buffering=1 << 16)
    n = 0
    for line in ctl:
        n += 1
        try:
            req = json.loads(line)
        except Exception as e:
            send({'id': None, 'error': 'bad request: %s' % e})
            continue
        # The sandbox's own /work is the working directory under bubblewrap (its parent, /, is read-only).
        rundir = WORKROOT if PID1 else os.path.join(WORKROOT, 'run-%d-%d' % (os.getpid(), n))
        try:
            if not PID1:
                os.mkdir(rundir, 0o700)
            send(run(req, rundir))
        except Exception as e:
            send({'id': req.get('id'), 'error': '%s: %s' % (type(e).__name__, e)})
            if PID1:
                discard_spare()
                take_prestart({}, rundir)
                clear_namespace()
        settle()
        tidy(rundir)
        # The compile command (no code) to start ahead of the next request, when this one asks.
        again = None
        if PID1 and req.get('prestart') and req.get('mode') == 'exec' and req.get('steps'):
            again = {'steps': req['steps'][:1], 'source': req.get('source')}
        # The next spare must not find this request (its tests, its input) among live objects.
        mode, req, line = req.get('mode') or 'python', None, None
        next_child(mode)
        if again is not None:
            prestart(again, rundir)
            again = None


main()

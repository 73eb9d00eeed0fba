# SPDX-License-Identifier: MIT
"""Session recordings and the EMG stream, end to end with the real daemon.

The demo recording (data/emg/emg_1.txt) is replayed with recording on. The
file is read back with libedf (edf_read, a C program built against
libedf-dev, as a researcher's program would) and every sample compared to
the replayed input exactly, after the documented quantisation:
digital = lround(µV x D / P), D = 32767 (EDF+), P = the physical range
(docs/recording.md). Annotations are compared to the published events, and
the file is opened with python3-mne as a researcher would.

A paced replay killed with SIGKILL leaves a file that MNE reads up to its
last complete data record and that edflib refuses until the next start
repairs it. With --enospc (under unshare -m, as root) the recording goes to
a small tmpfs that fills up: a published error, not a crash.
"""

import glob
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402
import validate_events  # noqa: E402

EDF_READ = os.environ.get("EDF_READ", os.path.join(rig.BUILD, "tests", "integration",
                                                   "edf_read"))
SCOPE = os.path.join(rig.SOURCE, "tools", "rpms-scope")
RATE = 1000.0
D = 32767
P = 10000.0     # record.range_uv = 0 with a replay: the 10000 µV default


def input_uv():
    """The replayed recording as the replay source converts it: float32 µV."""
    import numpy as np
    vals = []
    with open(os.path.join(rig.SOURCE, "data", "emg", "emg_1.txt")) as f:
        for line in f:
            s = line.strip()
            if s and not s.startswith("#"):
                vals.append(float(s) * 1.0)     # source.scale_uv = 1
    return np.array(vals, dtype=np.float32)


def quantise(x):
    """record.c's lround((double)x * D / P), clipped at +-D."""
    v = float(x) * D / P
    q = math.floor(abs(v) + 0.5)
    return int(max(-D, min(D, q if v >= 0 else -q)))


def record_config(directory, extra=None):
    ex = {("record", "directory"): directory, ("record", "patient_id"): "P001",
          ("record", "session_id"): "S42"}
    ex.update(extra or {})
    return rig.demo_config("tcp://127.0.0.1:%d" % rig.free_port(), extra=ex)


def edf_read(path):
    p = subprocess.run([EDF_READ, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else None)


def one_file(directory):
    files = sorted(glob.glob(os.path.join(directory, "*.edf")))
    check(len(files) == 1, "expected one .edf in %s, found %s" % (directory, files))
    return files[0]


def check_samples(sig, xs, n):
    """The first n samples of the file are exactly the quantised input."""
    got = sig["samples"]
    check(len(got) >= n, "%d samples in the file, expected at least %d" % (len(got), n))
    for i in range(n):
        want = quantise(xs[i])
        if got[i] != want:
            raise AssertionError("sample %d: %d in the file, expected %d (input %r uV)"
                                 % (i, got[i], want, float(xs[i])))


_fast = None


def fast_run():
    """One --fast replay with recording on, shared by several tests."""
    global _fast
    if _fast is None:
        d = tempfile.mkdtemp(prefix="rpmsd-rec-")
        r = rig.Run(record_config(d))
        r.dir = d
        r.path = one_file(d)
        rc, r.edf = edf_read(r.path)
        check(rc == 0, "edf_read refused %s: %r" % (r.path, r.edf))
        _fast = r
    return _fast


def test_header_and_summary():
    r = fast_run()
    check(r.returncode == 0, "exit status %d:\n%s" % (r.returncode, r.stderr))
    check("session file:    %s: 64 data records" % r.path in r.stdout,
          "summary:\n%s" % r.stdout)
    e = r.edf
    check(e["filetype"] == 1, "not EDF+: %r" % e["filetype"])
    check(e["patientcode"] == "P001" and e["admincode"] == "S42",
          "ids: %r %r" % (e["patientcode"], e["admincode"]))
    check(e["equipment"].startswith("rpmsd-"), "equipment %r" % e["equipment"])
    check(e["datarecords"] == 64 and e["datarecord_duration"] == 10000000,
          "%d records of %d" % (e["datarecords"], e["datarecord_duration"]))
    check(len(e["signals"]) == 1, "%d signals" % len(e["signals"]))
    s = e["signals"][0]
    check(s["label"].strip() == "EMG" and s["physdimension"].strip() == "uV",
          "label %r, unit %r" % (s["label"], s["physdimension"]))
    check((s["phys_max"], s["phys_min"], s["dig_max"], s["dig_min"]) == (P, -P, D, -D),
          "range %r" % ((s["phys_max"], s["phys_min"], s["dig_max"], s["dig_min"]),))
    check(s["smp_in_datarecord"] == 1000, "%d samples per record" % s["smp_in_datarecord"])


def test_samples_equal_input_exactly():
    r = fast_run()
    xs = input_uv()
    sig = r.edf["signals"][0]
    check_samples(sig, xs, len(xs))
    # The last record is padded with zeros after the data.
    check(all(v == 0 for v in sig["samples"][len(xs):]), "padding is not zeros")
    check(len(sig["samples"]) == 64000, "%d samples" % len(sig["samples"]))


def annotations(edf):
    """(text, onset in samples) of every annotation."""
    return [(a["text"], round(a["onset"] / 1e7 * RATE)) for a in edf["annotations"]]


def test_annotations_match_published_events():
    r = fast_run()
    ann = annotations(r.edf)
    # Every onset 100 µs-exact: edflib's resolution, and a sample is 1 ms.
    for a in r.edf["annotations"]:
        check(a["onset"] % 10000 == 0, "onset %d is not on a sample" % a["onset"])
    want = []
    for b in r.of("rpms.stim"):
        # at the firing time on the sample clock (whole samples in --fast)
        want.append(("pulse %d.%d %.4g%%" % (b["train_id"], b["index"], b["intensity_pct"]),
                     round(b["sample_at_fire"])))
    for b in r.of("rpms.burst"):
        if b["edge"] == "onset":
            want.append(("onset EMG train %d" % b["train_id"], b["edge_sample"]))
        else:
            want.append(("offset EMG", b["edge_sample"]))
    for b in r.of("rpms.state"):
        if b["state"] in ("armed", "disarmed"):
            # the stim thread's: on the sample clock, as pulses
            at = b["sample_at"]
            want.append(("%s: %s" % (b["state"], b["reason"]),
                         b["sample"] if at is None else round(at)))
        elif b["state"] == "calibrated":
            want.append(("calibrated EMG", b["sample"]))
    check(len(r.of("rpms.stim")) == 15, "%d pulses published" % len(r.of("rpms.stim")))
    for w in want:
        check(w in ann, "no annotation %r; file has %r" % (w, ann))
    check("end of data" in [t for t, _ in ann], "no 'end of data' annotation")
    check(len(ann) == len(want) + 4,   # started, source_end, stopping, end of data
          "%d annotations, expected %d: %r" % (len(ann), len(want) + 4, ann))


def test_record_events_published_and_valid():
    r = fast_run()
    validator = validate_events.load_validator(validate_events.DEFAULT_SCHEMA)
    for topic, body, raw in r.messages:
        try:
            validate_events.check_body(validator, topic, body)
        except validate_events.Invalid as e:
            raise AssertionError("%s %s: %s" % (topic, raw, e))
    opened = r.of("rpms.record", kind="opened")
    check(len(opened) == 1 and opened[0]["file"] == os.path.basename(r.path),
          "rpms.record opened: %r" % opened)


def test_mne_reads_it():
    import mne
    r = fast_run()
    raw = mne.io.read_raw_edf(r.path, preload=True, verbose="error")
    check(raw.ch_names == ["EMG"], "channels %r" % raw.ch_names)
    check(raw.info["sfreq"] == RATE, "rate %r" % raw.info["sfreq"])
    check(raw.n_times == 64000, "%d samples" % raw.n_times)
    xs = input_uv()
    data = raw.get_data()[0]            # volts
    step = P / D * 1e-6
    worst = max(abs(data[i] - quantise(xs[i]) * step) for i in range(len(xs)))
    check(worst < step * 1e-3, "MNE's samples differ by %g V" % worst)
    desc = list(raw.annotations.description)
    onsets = list(raw.annotations.onset)
    for b in r.of("rpms.stim"):
        text = "pulse %d.%d %.4g%%" % (b["train_id"], b["index"], b["intensity_pct"])
        check(text in desc, "MNE has no annotation %r" % text)
        check(abs(onsets[desc.index(text)] - b["sample_at_fire"] / RATE) < 1e-6,
              "%r at %r, published at %r" % (text, onsets[desc.index(text)], b["t_rec_s"]))


def header_fields(path):
    """The EDF+ header's local patient and recording identification, as
    the 80 characters of each field split into its subfields."""
    with open(path, "rb") as f:
        head = f.read(256)
    return head[8:88].decode("ascii"), head[88:168].decode("ascii"), head[168:184]


def test_header_identification_for_mne():
    """The EDF+ identification fields, filled as EDF+ 2.1.3 says, with the
    longest ids allowed: patient "CODE X X X" (sex, birthdate and name
    unknown: nothing invented), recording "Startdate DD-MMM-YYYY SESSION X
    rpmsd-VERSION" (technician unknown). edflib gives admincode,
    technician and equipment 42 characters together: a 40-character
    session id left an equipment of "X". Then what MNE makes of them
    (docs/recording.md)."""
    import datetime
    import mne
    sid = "S-" + "0123456789" * 3 + "abcdefgh"      # 40 characters, the most allowed
    pid = "P-" + "0123456789" * 6 + "a"             # 63 characters, likewise
    d = tempfile.mkdtemp(prefix="rpmsd-rec-hdr-")
    r = rig.Run(record_config(d, {("record", "session_id"): sid,
                                  ("record", "patient_id"): pid}))
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    path = one_file(d)
    patient, recording, date_time = header_fields(path)
    check(patient == "%-80s" % (pid + " X X X"), "patient identification %r" % patient)
    rc, e = edf_read(path)
    check(rc == 0, "edflib refuses %s: %r" % (path, e))
    y, mo, dd = e["startdate"]
    month = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()[mo - 1]
    version = subprocess.run([rig.RPMSD, "--version"], stdout=subprocess.PIPE,
                             text=True).stdout.split()[1]
    want = "Startdate %02d-%s-%04d %s X rpmsd-%s" % (dd, month, y, sid, version)
    check(recording == "%-80s" % want, "recording identification %r, expected %r"
          % (recording, want))
    # libedf turns an unknown sex and birthdate into "", keeps the name's X
    check((e["patientcode"], e["gender"], e["birthdate"], e["patient_name"]) ==
          (pid, "", "", "X"), "libedf reads the patient as %r"
          % ([e[k] for k in ("patientcode", "gender", "birthdate", "patient_name")],))
    check((e["admincode"], e["technician"], e["equipment"]) ==
          (sid, "", "rpmsd-" + version), "libedf reads the recording as %r"
          % ([e[k] for k in ("admincode", "technician", "equipment")],))
    raw = mne.io.read_raw_edf(path, preload=False, verbose="error")
    start = datetime.datetime(y, mo, dd, *e["starttime"], tzinfo=datetime.timezone.utc)
    check(raw.info["meas_date"].replace(microsecond=0) == start,
          "MNE meas_date %r, header %r" % (raw.info["meas_date"], start))
    subject = raw.info["subject_info"]
    if subject is None:
        # MNE before 1.6 (Debian 12 has 1.3) parses the patient subfields
        # but leaves info["subject_info"] empty, whatever the file holds
        parsed = raw._raw_extras[0]["subject_info"]
        check(parsed == {"id": pid, "sex": "X", "birthday": "X", "name": "X"},
              "MNE parsed the patient as %r" % parsed)
        print("MNE %s: info['subject_info'] is None; the header's patient subfields: %r"
              % (mne.__version__, parsed))
    else:
        check(subject.get("his_id") == pid and subject.get("sex") == 0,
              "MNE subject_info %r" % subject)
        print("MNE %s: info['subject_info'] = %r" % (mne.__version__, subject))


def test_session_id_beyond_the_header_is_refused():
    """record.session_id longer than the recording identification holds:
    a FILE:LINE error naming the key, not a file with a cut header."""
    d = tempfile.mkdtemp(prefix="rpmsd-rec-long-")
    conf = rig.write_config(record_config(d, {("record", "session_id"): "S" * 41}), d)
    p = subprocess.run([rig.RPMSD, "--check-config", conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    check(p.returncode == 1 and "record.session_id" in p.stderr and "41 characters" in p.stderr
          and "%s:" % conf in p.stderr, "rc %d: %s" % (p.returncode, p.stderr))


def records_on_disk(directory):
    """Complete data records in the one EDF file of directory so far (0
    while it has no header yet): its size past the header over the bytes
    of one record (2 per sample), both from the header itself."""
    files = glob.glob(os.path.join(directory, "*.edf"))
    if len(files) != 1:
        return 0
    with open(files[0], "rb") as f:
        data = f.read()
    if len(data) < 256:
        return 0
    head, ns = int(data[184:192]), int(data[252:256])
    if len(data) < head:
        return 0
    at = 256 + ns * 216
    per = sum(int(data[at + 8 * i:at + 8 * i + 8]) for i in range(ns))
    return (len(data) - head) // (2 * per)


def test_sigkill_then_repair():
    import mne
    d = tempfile.mkdtemp(prefix="rpmsd-rec-kill-")
    # Killed once three records are on disk, whatever the machine's load
    # (a wall-clock delay from the start once left too few under ASan).
    rig.Run(record_config(d), args=(), stop_signal=signal.SIGKILL,
            stop_when=lambda msgs: records_on_disk(d) >= 3)
    path = one_file(d)
    with open(path, "rb") as f:
        head = f.read(256)
    check(head[236:244].strip() == b"-1", "header count %r after SIGKILL" % head[236:244])
    rc, out = edf_read(path)
    check(rc == 2, "edflib read a file left open: rc %d" % rc)
    xs = input_uv()
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    n = raw.n_times
    check(n >= 3000 and n % 1000 == 0, "MNE reads %d samples" % n)
    step = P / D * 1e-6
    data = raw.get_data()[0]
    worst = max(abs(data[i] - quantise(xs[i]) * step) for i in range(n))
    check(worst < step * 1e-3, "samples differ by %g V after SIGKILL" % worst)
    # The next start in the same directory repairs it.
    r = rig.Run(record_config(d))
    check(r.returncode == 0, "second run: %d\n%s" % (r.returncode, r.stderr))
    repaired = r.of("rpms.record", kind="repaired")
    check(len(repaired) == 1 and repaired[0]["file"] == os.path.basename(path),
          "rpms.record repaired: %r" % repaired)
    check(repaired[0]["records"] * 1000 >= n, "repaired to %d records" % repaired[0]["records"])
    rc, e = edf_read(path)
    check(rc == 0, "edflib still refuses the repaired file: %r" % e)
    check(e["datarecords"] == repaired[0]["records"], "%r records" % e["datarecords"])
    check_samples(e["signals"][0], xs, e["datarecords"] * 1000)


def thread_cpu_s(pid, name):
    """CPU time (user + system, s) of the thread of pid called name."""
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, task)) as f:
            if f.read().strip() != name:
                continue
        with open("/proc/%d/task/%s/stat" % (pid, task)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    raise AssertionError("no thread %s in %d" % (name, pid))


def test_record_thread_sleeps_when_idle():
    """The recorder waits between blocks instead of spinning: its idle wait
    once took a CLOCK_MONOTONIC deadline on a CLOCK_REALTIME condition
    variable and returned at once, a whole core for the recorder."""
    d = tempfile.mkdtemp(prefix="rpmsd-rec-idle-")
    state = {}

    def measure(msgs):
        if "pid" not in state or not any(t == "rpms.heartbeat" for t, _, _ in msgs):
            return False
        now = time.monotonic()
        if "t0" not in state:
            state["t0"], state["cpu0"] = now, thread_cpu_s(state["pid"], "rpmsd-record")
            return False
        if now - state["t0"] < 3.0:
            return False
        state["share"] = ((thread_cpu_s(state["pid"], "rpmsd-record") - state["cpu0"]) /
                          (now - state["t0"]))
        return True

    r = rig.Run(record_config(d), args=(), stop_when=measure,
                on_start=lambda pid: state.update(pid=pid))
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr[-1500:]))
    # 1 kHz of one channel: a fraction of a percent of a core is the work.
    check(state["share"] < 0.2, "the record thread used %.0f %% of a core while the "
          "recording ran at 1 kHz" % (100 * state["share"]))
    print("record thread: %.2f %% of a core" % (100 * state["share"]))


def test_control_sessions_get_their_own_files():
    """A control session_start closes the start-up file and opens one with
    the session's ids; session_stop closes it. Both files are complete."""
    d = tempfile.mkdtemp(prefix="rpmsd-rec-ctl-")
    text = record_config(d, {("daemon", "arm_on_start"): "false"})
    ep = rig.section_value(text, "control", "endpoint")
    done = {}

    def ctl(*args):
        p = subprocess.run([rig.RPMSCTL] + list(args) + ["-e", ep, "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
        return p.returncode, json.loads(p.stdout) if p.stdout.strip() else p.stderr

    def script(msgs):
        beats = sum(1 for t, _, _ in msgs if t == "rpms.heartbeat")
        if beats >= 1 and "start" not in done:
            done["start"] = ctl("session", "start", "--patient", "P7", "--session", "S9")
        if beats >= 3 and "stop" not in done:
            done["stop"] = ctl("session", "stop")
        return "stop" in done

    r = rig.Run(text, args=(), timeout=60, stop_when=script)
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    rc, rep = done["start"]
    check(rc == 0 and rep["ok"] and rep["result"]["recording"].get("file"),
          "session start: %r" % (done["start"],))
    check(done["stop"][0] == 0, "session stop: %r" % (done["stop"],))
    files = sorted(glob.glob(os.path.join(d, "*.edf")))
    check(len(files) == 2 and rep["result"]["recording"]["file"] in files,
          "files %r, reply %r" % (files, rep))
    ids = {}
    for f in files:
        rc, e = edf_read(f)
        check(rc == 0, "edflib refuses %s: %r" % (f, e))
        ids[(e["patientcode"], e["admincode"])] = e["datarecords"]
    check(set(ids) == {("P001", "S42"), ("P7", "S9")}, "ids %r" % ids)
    check(ids[("P7", "S9")] >= 1, "the session's file has no data: %r" % ids)


def emg_daemon(extra_args=()):
    """A --fast demo run with rpms.emg on, waiting for its first subscriber."""
    endpoint = "tcp://127.0.0.1:%d" % rig.free_port()
    cfg = rig.demo_config(endpoint, extra={("publish", "emg_stream"): "true",
                                           ("publish", "emg_decimation"): "5"})
    tmp = tempfile.mkdtemp(prefix="rpmsd-emg-")
    conf = rig.write_config(cfg, tmp)
    proc = subprocess.Popen([rig.RPMSD, "--config", conf, "--fast", "--wait-subscriber=20"]
                            + list(extra_args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return endpoint, tmp, proc


def test_emg_stream():
    """publish.emg_stream: every message valid, contiguous, decimated by index."""
    import zmq
    endpoint, _, daemon = emg_daemon()
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"rpms.emg")
    sub.connect(endpoint)
    msgs = []
    while sub.poll(2000):
        msgs.append(sub.recv_multipart())
    daemon.communicate(timeout=60)
    sub.close(linger=0)
    check(len(msgs) > 100, "%d rpms.emg messages" % len(msgs))
    validator = validate_events.load_validator(validate_events.DEFAULT_SCHEMA)
    seq, nxt, dropped, missing = 0, 0, 0, 0
    for m in msgs:
        check(len(m) == 3, "rpms.emg with %d frames" % len(m))
        head = json.loads(m[1])
        validate_events.check_body(validator, "rpms.emg", head)
        check(head["seq"] == seq, "seq %d, expected %d" % (head["seq"], seq))
        seq += 1
        check(head["decimation"] == 5 and head["sample"] % 5 == 0, "head %r" % head)
        # Fast replay outruns the publisher: what the ring dropped is
        # counted in "dropped" (blocks of 8 frames), never silent.
        check(head["sample"] >= nxt and head["dropped"] >= dropped,
              "sample %d after %d, dropped %d after %d"
              % (head["sample"], nxt, head["dropped"], dropped))
        missing += head["sample"] - nxt
        dropped = head["dropped"]
        nxt = head["sample"] + 5 * head["frames"]
        check(len(m[2]) == head["frames"] * 2 * 4, "payload of %d bytes" % len(m[2]))
    missing += 63880 - nxt      # the end, dropped too (within a decimation step)
    check(missing <= dropped * 8 + 5 and (dropped > 0) == (missing > 5),
          "%d samples missing, %d blocks reported dropped" % (missing, dropped))
    last = json.loads(msgs[-1][1])
    check(last["on_threshold"][0] is not None, "no threshold after calibration: %r" % last)


def test_scope_draws_png():
    """tools/rpms-scope --once N --save FILE.png, headless, against the daemon."""
    endpoint, tmp, daemon = emg_daemon()
    png = os.path.join(tmp, "scope.png")
    env = dict(os.environ, MPLBACKEND="Agg")
    scope = subprocess.run([sys.executable, SCOPE, "--endpoint", endpoint, "--once", "1200",
                            "--window", "64", "--timeout", "5", "--save", png], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=120)
    daemon.communicate(timeout=60)
    check(scope.returncode == 0, "rpms-scope: %d\n%s" % (scope.returncode, scope.stderr))
    with open(png, "rb") as f:
        check(f.read(8) == b"\x89PNG\r\n\x1a\n", "not a PNG")
    check(os.path.getsize(png) > 20000, "PNG of %d bytes" % os.path.getsize(png))
    if os.environ.get("SCOPE_PNG"):
        import shutil
        shutil.copy(png, os.environ["SCOPE_PNG"])


def test_enospc():
    """A full disk: a published error, the session goes on, the file is readable."""
    if os.geteuid() != 0:
        raise rig.Skip("needs root for a tmpfs")
    d = tempfile.mkdtemp(prefix="rpmsd-rec-full-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", d], check=True)
    try:
        r = rig.Run(record_config(d))
        check(r.returncode == 3, "exit status %d (a recording error is 3)\n%s"
              % (r.returncode, r.stderr))
        check(len(r.of("rpms.stim")) == 15, "stimulation stopped: %d pulses"
              % len(r.of("rpms.stim")))
        err = r.of("rpms.record", kind="error")
        check(len(err) == 1 and err[0]["code"] == -28, "rpms.record error: %r" % err)
        check("No space left on device" in r.stdout, "summary:\n%s" % r.stdout)
        path = one_file(d)
        rc, e = edf_read(path)
        check(rc == 0, "edflib refuses the file after ENOSPC: %r" % e)
        check(e["datarecords"] == err[0]["records"] and e["datarecords"] >= 5,
              "%r records, the error said %r" % (e["datarecords"], err[0]["records"]))
        check_samples(e["signals"][0], input_uv(), e["datarecords"] * 1000)
    finally:
        subprocess.run(["umount", "-l", d])


# ---- many short control sessions -------------------------------------------

def rest_recording(seconds=400):
    """Rest EMG (seeded noise of 10 uV) at RATE, long enough for every
    session of a loop: nothing in it starts a train, the open-loop protocol
    fires on arming."""
    import random
    path = os.path.join(tempfile.gettempdir(), "rpmsd-rest-%d.txt" % os.getpid())
    if not os.path.exists(path):
        rng = random.Random(16)
        with open(path + ".tmp", "w") as f:
            f.write("# rest EMG for test_record.py's session loops\n")
            f.writelines("%.2f\n" % rng.gauss(0.0, 10.0) for _ in range(int(seconds * RATE)))
        os.rename(path + ".tmp", path)
    return path


def session_config(directory, pulse_log):
    """Paced replay of rest EMG, open loop (trains of 3 pulses at 20 Hz every
    about 200 ms from arming on), recording on, a control socket, a sim
    coil whose disarm takes 5 ms."""
    conf = {
        "daemon": {"state_dir": rig.state_dir(), "arm_on_start": "false"},
        "source": {"file": rest_recording(), "format": "text", "rate_hz": "%d" % RATE,
                   "realtime": "true", "block_frames": "8"},
        "detect": {"calibration_s": "1"},
        "stim": {"plugin": "sim", "mode": "open_loop", "protocol": "train",
                 "train_pulses": "3", "train_frequency_hz": "20", "intensity_pct": "30",
                 "off_ms": "150", "open_loop_pulses": "1000"},
        "safety": {"max_train_pulses": "10", "motor_threshold_pct": "40",
                   "min_train_interval_ms": "100", "max_frequency_hz": "25"},
        "publish": {"endpoint": "tcp://127.0.0.1:%d" % rig.free_port(), "heartbeat_s": "0.25"},
        "control": {"endpoint": rig.control_endpoint()},
        "record": {"directory": directory, "patient_id": "P0", "session_id": "S0"},
        # a disarm that takes a while, as over a stimulator's bus: the
        # "disarmed" event comes that much after the gate was disarmed
        "coil.sim": {"pulse_log": pulse_log, "disarm_ms": "5"},
    }
    return "".join("[%s]\n%s" % (sec, "".join("%s = %s\n" % kv for kv in keys.items()))
                   for sec, keys in conf.items())


class SessionDaemon(rig.LiveDaemon):
    """A paced rpmsd driven through rpmsctl, with a subscriber thread that
    keeps every message (topic, body) in arrival order."""

    def __init__(self, name):
        directory = tempfile.mkdtemp(prefix="rpmsd-rec-%s-" % name)
        self.pulse_log = os.path.join(directory, "pulses.csv")
        self.rec = os.path.join(directory, "rec")
        os.mkdir(self.rec)
        super().__init__(session_config(self.rec, self.pulse_log), directory, calibration_s=60)

    def ctl(self, *args):
        p = subprocess.run([rig.RPMSCTL] + list(args) + ["-e", self.control, "--json",
                                                         "-T", "20"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        reply = json.loads(p.stdout) if p.stdout.strip() else None
        check(p.returncode == 0 and reply and reply["ok"],
              "rpmsctl %s: %d %r %s" % (" ".join(args), p.returncode, reply, p.stderr))
        return reply["result"]

    def sim_pulses(self):
        """t_session_s of every pulse the sim coil fired (its pulse_log)."""
        with open(self.pulse_log) as f:
            return [float(line.split(",")[0]) for line in f.readlines()[1:]]


def session_window(d, session_id):
    """The session's started and stopped rpms.state events."""
    st = d.of("rpms.state", state="session_started", session_id=session_id)
    sp = d.of("rpms.state", state="session_stopped", session_id=session_id)
    check(len(st) == 1 and len(sp) == 1, "session %s: started %r stopped %r"
          % (session_id, st, sp))
    return st[0], sp[0]


def published_pulse(published, t):
    """The rpms.stim event of the pulse the sim coil logged at t: the stim
    thread reads the clock (t_actual_s) just before it calls the plugin,
    which reads it again; pulses are 40 ms apart or more."""
    p = [p for p in published if -0.005 < t - p["t_actual_s"] < 0.005]
    check(len(p) == 1, "the coil fired at %.9f s: rpms.stim %r" % (t, p))
    return p[0]


def check_session_file(d, session_id, path, fired):
    """The session's file (libedf) holds its arm, every pulse the sim coil
    fired between its start and stop (as published), and the disarm of
    the stop, in this order. @return the annotations."""
    started, stopped = session_window(d, session_id)
    rc, e = edf_read(path)
    check(rc == 0, "edflib refuses %s: %r" % (path, e))
    check(e["admincode"] == session_id, "%s: admincode %r" % (path, e["admincode"]))
    ann = [(a["text"], a["onset"] / 1e7) for a in e["annotations"]]
    texts = [t for t, _ in ann]
    check("armed: control: arm" in texts, "session %s: no arm in %s: %r"
          % (session_id, path, ann))
    check("disarmed: session stopped" in texts, "session %s: the disarm of session stop is "
          "missing from %s: %r" % (session_id, path, ann))
    # The stim thread's events (arm, pulses, disarm) in the file's order.
    armed = [b for b in d.of("rpms.state", state="armed")
             if started["t_session_s"] <= b["t_session_s"] <= stopped["t_session_s"]]
    check(len(armed) == 1, "session %s: arms %r" % (session_id, armed))
    # the stim thread's events are annotated on the sample clock
    first = round(armed[0]["sample_at"] - ann[texts.index("armed: control: arm")][1] * RATE)
    published = d.of("rpms.stim")
    want = []
    for t in fired:
        if started["t_session_s"] <= t <= stopped["t_session_s"]:
            want.append(published_pulse(published, t))
    check(want, "session %s: the coil fired no pulse in it" % session_id)
    order = [texts.index("armed: control: arm")]
    for p in want:
        text = "pulse %d.%d %.4g%%" % (p["train_id"], p["index"], p["intensity_pct"])
        check(text in texts, "session %s: %s (fired at %.6f s) is not in %s: %r"
              % (session_id, text, p["t_actual_s"], path, ann))
        at = ann[texts.index(text)][1]
        # at its firing time on the sample clock, to edflib's 100 us
        check(abs(at * RATE - (p["sample_at_fire"] - first)) <= 0.1 * RATE / 1000,
              "session %s: %s at %.4f s, fired at sample %.3f (file from %d)"
              % (session_id, text, at, p["sample_at_fire"], first))
        order.append(texts.index(text))
    order.append(texts.index("disarmed: session stopped"))
    check(order == sorted(order), "session %s: arm, pulses and disarm out of order in "
          "%s: %r" % (session_id, path, ann))
    onsets = [ann[i][1] for i in order]
    check(onsets == sorted(onsets), "session %s: onsets not in order: %r"
          % (session_id, [ann[i] for i in order]))
    return ann


def test_every_session_file_has_its_disarm():
    """B1: many short sessions (start, arm, pulses, session stop): each
    session's file has the disarm of its session stop and every pulse
    the coil fired in it. The control thread once closed the file before
    the stim thread's disarm event had reached the recorder (9 of 24
    sessions had no disarm)."""
    d = SessionDaemon("b1")
    sessions = []
    try:
        for i in range(32):
            sid = "S%02d" % i
            rep = d.ctl("session", "start", "--patient", "P%02d" % i, "--session", sid)
            check(rep["recording"] and rep["recording"].get("file"), "start: %r" % rep)
            m = d.mark()
            d.ctl("arm")
            d.wait_for(lambda: len(d.of("rpms.stim", since=m)) >= 2, 30, "pulses")
            d.ctl("session", "stop")
            sessions.append((sid, rep["recording"]["file"]))
    finally:
        d.stop()
    fired = d.sim_pulses()
    missing = []
    for sid, path in sessions:
        try:
            check_session_file(d, sid, path, fired)
        except AssertionError as e:
            missing.append(str(e).splitlines()[0][:300])
    check(not missing, "%d of %d sessions fail:\n%s"
          % (len(missing), len(sessions), "\n".join(missing)))


def test_short_sessions_back_to_back():
    """B2: sessions of 0.1 to 0.5 s back to back. No file reports EMG lost,
    each ends its data where its session stopped, and rpms.record carries
    the daemon's sample. The start-up file's "closed" event, which carried
    that file's padded end, came back through the publisher after the first
    session's file had opened and was taken as EMG lost there (a 0.3 s
    session: 536 samples "lost", data to 0.880 s instead of 0.344 s)."""
    d = SessionDaemon("b2")
    sessions = []
    try:
        for i, length in enumerate([0.3, 0.1, 0.2, 0.5, 0.15, 0.4, 0.25, 0.1, 0.35, 0.45]):
            sid = "B%02d" % i
            rep = d.ctl("session", "start", "--patient", "P%02d" % i, "--session", sid)
            d.ctl("arm")
            time.sleep(length)      # the session's length, not a synchronisation
            d.ctl("session", "stop")
            sessions.append((sid, rep["recording"]["file"]))
    finally:
        d.stop()
    check(not d.of("rpms.record", kind="lost"), "rpms.record lost: %r"
          % d.of("rpms.record", kind="lost"))
    bad = []
    for sid, path in sessions:
        started, stopped = session_window(d, sid)
        name = os.path.basename(path)
        opened = d.of("rpms.record", kind="opened", file=name)
        closed = d.of("rpms.record", kind="closed", file=name)
        check(len(opened) == 1 and len(closed) == 1, "%s: rpms.record %r %r"
              % (sid, opened, closed))
        rc, e = edf_read(path)
        check(rc == 0, "edflib refuses %s: %r" % (path, e))
        ann = {a["text"]: a["onset"] / 1e7 for a in e["annotations"]}
        armed = [b for b in d.of("rpms.state", state="armed")
                 if started["t_session_s"] <= b["t_session_s"] <= stopped["t_session_s"]]
        disarmed = [b for b in d.of("rpms.state", state="disarmed", reason="session stopped")
                    if started["t_session_s"] <= b["t_session_s"] <= stopped["t_session_s"]]
        problems = []
        if any(t.startswith("recording lost") for t in ann):
            problems.append("annotations %r" % ann)
        if closed[0]["lost"]:
            problems.append("closed with %d samples lost" % closed[0]["lost"])
        # the daemon's sample, not the file's padded end. The file opens
        # first, then the session is marked (control_command.c), so the
        # file holds the session's first sample: it opens at the EMG block
        # the recorder had, at most a block or a few before the session's
        # start when the acquire thread moved on in between (on a loaded
        # machine), never after it.
        if not (started["sample"] - RATE * 0.25 <= opened[0]["sample"] <= started["sample"]
                <= closed[0]["sample"] <= stopped["sample"]):
            problems.append("rpms.record samples: opened %d, closed %d; session %d-%d"
                            % (opened[0]["sample"], closed[0]["sample"], started["sample"],
                               stopped["sample"]))
        if len(armed) == 1 and "armed: control: arm" in ann and "end of data" in ann:
            # the arm is annotated where it happened on the sample clock
            first = round(armed[0]["sample_at"] - ann["armed: control: arm"] * RATE)
            end = first + round(ann["end of data"] * RATE)     # one past the data
            # from the last block received before the session (the block
            # of its start may have been on its way) to where it stopped,
            # the disarm's sample included
            if not (started["sample"] - 16 < first <= started["sample"] + 1 and
                    disarmed and disarmed[0]["sample"] < end <= stopped["sample"] + 1):
                problems.append("data from %d to %d, session %d-%d, disarm %r"
                                % (first, end, started["sample"], stopped["sample"],
                                   [b["sample"] for b in disarmed]))
            if e["datarecords"] != -(-(end - first) // RATE):
                problems.append("%d data records for %d samples"
                                % (e["datarecords"], end - first))
        else:
            problems.append("no arm or end of data: %r" % ann)
        if problems:
            bad.append("%s (%s): %s" % (sid, name, "; ".join(problems)))
    check(not bad, "%d of %d short sessions:\n%s" % (len(bad), len(sessions), "\n".join(bad)))
def test_pulse_annotations_at_firing_time():
    """Issue 16: each pulse is annotated when it fired, mapped onto the
    sample clock, not at the last sample read then (up to a block late in
    --fast, 0.1-6.4 ms early in real time). In --fast the coil plugin's own
    log of each pulse's time and the annotation agree exactly, to edflib's
    100 us unit."""
    d = tempfile.mkdtemp(prefix="rpmsd-rec-pulses-")
    log = os.path.join(d, "pulses.csv")
    r = rig.Run(record_config(d, {("coil.sim", "pulse_log"): log}))
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    rc, e = edf_read(one_file(d))
    check(rc == 0, "edf_read: %r" % e)
    with open(log) as f:
        fired = [float(x.split(",")[0]) for x in f.read().splitlines()[1:]]
    onsets = [a["onset"] for a in e["annotations"] if a["text"].startswith("pulse ")]
    check(len(fired) == 15 and len(onsets) == 15, "%d fired, %d annotated" %
          (len(fired), len(onsets)))
    for t, onset in zip(fired, onsets):
        check(onset == round(t * 1e4) * 1000, "fired at %.6f s, annotated at %.7f s"
              % (t, onset / 1e7))


def thread_id(pid, name):
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, task)) as f:
            if f.read().strip() == name:
                return int(task)
    raise AssertionError("no thread %s in %d" % (name, pid))


class ThreadFreeze:
    """Stop one thread of another process, and only that one: ptrace's
    PTRACE_SEIZE + PTRACE_INTERRUPT (a SIGSTOP would stop every thread)."""
    SEIZE, INTERRUPT, DETACH, WALL = 0x4206, 0x4207, 17, 0x40000000

    def __init__(self, tid):
        import ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p,
                                     ctypes.c_void_p]
        self.tid = tid
        for req in (self.SEIZE, self.INTERRUPT):
            if self.libc.ptrace(req, tid, None, None) != 0:
                raise AssertionError("ptrace(%#x, %d): %s" % (req, tid,
                                                             os.strerror(ctypes.get_errno())))
        os.waitpid(tid, self.WALL)

    def thaw(self):
        check(self.libc.ptrace(self.DETACH, self.tid, None, None) == 0, "ptrace detach")


def test_events_the_recorder_missed_are_in_the_file():
    """The recorder's input ring, to which the publisher copies every event,
    dropped copies silently when the recorder fell behind: the file lacked
    events and nothing said so. The recorder thread is frozen (ptrace, that
    thread alone) while an open-loop protocol fires about 25 pulses a second
    into rings of 64 records: the file now says "recording missed N
    events" where it happened, the summary and the log count them, and
    every published pulse is either in the file or among the N."""
    d = tempfile.mkdtemp(prefix="rpmsd-rec-missed-")
    state = {"pulses": 0}

    def drive(msgs):
        pulses = sum(1 for t, _, _ in msgs if t == "rpms.stim")
        if "pid" not in state or pulses == 0:
            return False
        if "frozen" not in state:
            state["frozen"] = ThreadFreeze(thread_id(state["pid"], "rpmsd-record"))
            state["at"] = pulses
            return False
        if "thawed" not in state:
            if pulses - state["at"] < 120:
                return False
            state["frozen"].thaw()
            state["thawed"] = time.monotonic()
            return False
        return time.monotonic() - state["thawed"] > 1.0

    r = rig.Run(record_config(d, {
        ("stim", "mode"): "open_loop", ("stim", "train_pulses"): "25",
        ("stim", "train_frequency_hz"): "25", ("stim", "off_ms"): "100",
        ("stim", "open_loop_pulses"): "5000", ("safety", "max_train_pulses"): "25",
        ("safety", "min_train_interval_ms"): "100", ("publish", "ring_records"): "64",
        ("coil.sim", "heat_per_pulse_c"): "0.001"}), args=(), stop_when=drive,
        on_start=lambda pid: state.update(pid=pid), timeout=60)
    check("thawed" in state, "the run ended before the recorder was thawed: %s"
          % r.stderr[-1500:])
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr[-1500:]))
    path = one_file(d)
    rc, e = edf_read(path)
    check(rc == 0, "edf_read: %r" % e)
    texts = [t for t, _ in annotations(e)]
    missed = [int(t.split()[2]) for t in texts if t.startswith("recording missed ")]
    check(missed, "no 'recording missed' annotation in %s" % texts[-20:])
    n = sum(missed)
    check("%d events missing" % n in r.stdout, "summary:\n%s" % r.stdout)
    check("%d events are missing from %s" % (n, path) in r.stderr, r.stderr[-1500:])
    published = len(r.of("rpms.stim"))
    in_file = sum(1 for t in texts if t.startswith("pulse "))
    check(in_file < published and in_file + n >= published,
          "%d pulses published, %d in the file, %d events missed" % (published, in_file, n))
    print("     recorder frozen: %d pulses published, %d in the file, %d events missed"
          % (published, in_file, n))


def test_disarm_after_the_last_pulse_in_the_file():
    """A pulse is annotated at its firing time on the sample clock; the
    stim thread's disarm right after it was annotated at the last sample
    read, up to a block earlier: before the pulse it followed (the e2e
    check saw it once, 0.1 ms apart). Paced replay in 100 ms blocks, a
    20 Hz open-loop train, SIGTERM as soon as its third pulse is published:
    the disarm comes within the block of that pulse. Now the stim thread's
    state events are on the sample clock too."""
    d = tempfile.mkdtemp(prefix="rpmsd-rec-order-")
    r = rig.Run(record_config(d, {
        ("source", "block_frames"): "100", ("stim", "mode"): "open_loop",
        ("stim", "train_pulses"): "10", ("stim", "train_frequency_hz"): "20",
        ("stim", "off_ms"): "500"}), args=(), timeout=60,
        stop_when=lambda msgs: sum(1 for t, _, _ in msgs if t == "rpms.stim") >= 3)
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr[-1500:]))
    rc, e = edf_read(one_file(d))
    check(rc == 0, "edf_read: %r" % e)
    pulses = [a["onset"] for a in e["annotations"] if a["text"].startswith("pulse ")]
    done = [a["onset"] for a in e["annotations"] if a["text"].startswith("disarmed: signal")]
    check(pulses and done, "annotations %r" % e["annotations"])
    check(done[0] >= max(pulses), "the disarm at %.4f s, before the last pulse at %.4f s"
          % (done[0] / 1e7, max(pulses) / 1e7))

if __name__ == "__main__":
    if "--enospc" in sys.argv:
        rig.run_tests([test_enospc])
    rig.run_tests([test_header_and_summary, test_samples_equal_input_exactly,
                   test_annotations_match_published_events,
                   test_record_events_published_and_valid, test_mne_reads_it,
                   test_header_identification_for_mne,
                   test_session_id_beyond_the_header_is_refused,
                   test_pulse_annotations_at_firing_time,
                   test_sigkill_then_repair, test_record_thread_sleeps_when_idle,
                   test_events_the_recorder_missed_are_in_the_file,
                   test_disarm_after_the_last_pulse_in_the_file,
                   test_control_sessions_get_their_own_files,
                   test_every_session_file_has_its_disarm,
                   test_short_sessions_back_to_back,
                   test_emg_stream, test_scope_draws_png])

"""Applies a faultvfs undo log (tests/tools/faultvfs.c) after sealmaild was killed: every
write to the database or its WAL that no completed sync covered is undone, so the files are
what a power cut at the moment of the kill would have left on a disk that keeps exactly what
was synced. Returns how many writes were undone."""
import os
import struct


def _records(data):
    i = 0
    n = len(data)
    while i < n:
        if n - i < 5:
            return  # a record cut by the kill: it never reached its write
        kind = data[i:i + 1]
        (fid,) = struct.unpack_from("=I", data, i + 1)
        i += 5
        if kind == b"O":
            if n - i < 4:
                return
            (ln,) = struct.unpack_from("=I", data, i)
            if n - i - 4 < ln:
                return
            yield kind, fid, data[i + 4:i + 4 + ln].decode()
            i += 4 + ln
        elif kind == b"W":
            if n - i < 20:
                return
            off, size, have = struct.unpack_from("=QQI", data, i)
            if n - i - 20 < have:
                return
            yield kind, fid, (off, size, data[i + 20:i + 20 + have])
            i += 20 + have
        elif kind == b"T":
            if n - i < 16:
                return
            before, after = struct.unpack_from("=QQ", data, i)
            ln = before - after
            if n - i - 16 < ln:
                return
            yield kind, fid, (before, after, data[i + 16:i + 16 + ln])
            i += 16 + ln
        elif kind == b"S":
            yield kind, fid, None
        else:
            raise ValueError("undo log is corrupt at byte %d" % (i - 5))


def apply(journal_path):
    with open(journal_path, "rb") as f:
        data = f.read()
    paths = {}
    pending = {}  # file id -> undo records since its last sync
    for kind, fid, val in _records(data):
        if kind == b"O":
            paths[fid] = val
            pending[fid] = []
        elif kind == b"S":
            pending[fid] = []
        else:
            pending.setdefault(fid, []).append((kind, val))
    # Several ids may name one path (the file was opened again): undo newest first.
    undone = 0
    for fid in sorted(pending, reverse=True):
        recs = pending[fid]
        if not recs or fid not in paths or not os.path.exists(paths[fid]):
            continue
        with open(paths[fid], "r+b") as f:
            for kind, val in reversed(recs):
                if kind == b"W":
                    off, size, old = val
                    f.seek(off)
                    f.write(old)
                    # Before this write the file had size bytes: anything past them
                    # came from it or from later writes, already undone.
                    if os.fstat(f.fileno()).st_size > size:
                        f.truncate(size)
                else:
                    before, after, tail = val
                    f.truncate(after)
                    f.seek(after)
                    f.write(tail)
                undone += 1
            f.flush()
    return undone

"""Dataset signatures follow the files' content, not where or when they were copied."""

import os
import shutil

from ecgcore.io.signature import dataset_signature, read_digests, signature_memo, write_digests


def _copy(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".cache", "splits"))
    return dst


def test_a_recopied_dataset_keeps_its_signature_and_a_changed_byte_does_not(synth_dir, tmp_path):
    before = dataset_signature(str(synth_dir))
    copy = _copy(synth_dir, tmp_path / "elsewhere")
    record = copy / "A00001.mat"
    os.utime(record, ns=(record.stat().st_atime_ns, record.stat().st_mtime_ns + 10**9))  # re-provisioned: new times
    assert dataset_signature(str(copy)) == before
    data = bytearray(record.read_bytes())
    data[-1] ^= 1
    record.write_bytes(bytes(data))
    assert dataset_signature(str(copy)) != before
    (copy / "splits").mkdir(exist_ok=True)
    (copy / "splits" / "x.csv").write_text("not data\n")  # splits and caches are outputs, not the dataset
    changed = dataset_signature(str(copy))
    (copy / "new.csv").write_text("a,b\n")
    assert dataset_signature(str(copy)) != changed


def test_the_memo_holds_each_files_digest_under_its_size_and_time(synth_dir, tmp_path):
    copy = _copy(synth_dir, tmp_path / "data")
    memo = signature_memo(tmp_path / "cache", str(copy))
    known = read_digests(memo)
    first = dataset_signature(str(copy), known)
    write_digests(memo, known)
    digests = read_digests(memo)
    assert "A00001.mat" in digests and "REFERENCE.csv" in digests and first == dataset_signature(str(copy))
    record = copy / "A00001.mat"
    data = bytearray(record.read_bytes())
    data[-1] ^= 1
    stat = record.stat()
    record.write_bytes(bytes(data))
    os.utime(record, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and time: the memo's digest stands
    assert dataset_signature(str(copy), read_digests(memo)) == first
    os.utime(record, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # a new time: hashed again
    known = read_digests(memo)
    assert dataset_signature(str(copy), known) == dataset_signature(str(copy)) != first
    assert known["A00001.mat"][1] == stat.st_mtime_ns + 1
    record.unlink()
    dataset_signature(str(copy), known)
    assert "A00001.mat" not in known  # a file gone is gone from the memo

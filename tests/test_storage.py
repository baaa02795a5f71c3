"""Testes do armazenamento em disco: estado atômico, log com CRC, fim cortado."""

import logging
import os
import tempfile
import unittest

from raft_distribuido import DiskStorage, LogEntry, StorageError, encode_record


def sample_entries(count, term=1):
    return [LogEntry(term=term, index=index, command={"op": "put", "key": f"k{index}",
                                                      "value": "é" * index})
            for index in range(1, count + 1)]


class DiskStorageTest(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.mkdtemp(prefix="raft-disco-")
        self.lines = []

    def open_storage(self):
        storage = DiskStorage(self.folder, lambda level, text: self.lines.append((level, text)))
        state = storage.open()
        self.addCleanup(storage.close)
        return storage, state

    def write_log(self, entries):
        storage, _ = self.open_storage()
        storage.append(entries)
        storage.sync()
        storage.close()

    def test_empty_folder_starts_at_term_zero(self):
        _, (term, voted_for, entries) = self.open_storage()
        self.assertEqual((term, voted_for, entries), (0, None, []))

    def test_state_and_log_survive_reopen(self):
        storage, _ = self.open_storage()
        storage.save_state(7, "2")
        storage.append(sample_entries(5))
        storage.sync()
        storage.close()
        _, (term, voted_for, entries) = self.open_storage()
        self.assertEqual((term, voted_for), (7, "2"))
        self.assertEqual(entries, sample_entries(5))

    def test_truncate_then_append_rewrites_suffix(self):
        storage, _ = self.open_storage()
        storage.append(sample_entries(5))
        storage.truncate(3)
        replacement = [LogEntry(term=2, index=3, command=None)]
        storage.append(replacement)
        storage.sync()
        storage.close()
        _, (_, _, entries) = self.open_storage()
        self.assertEqual(entries, sample_entries(2) + replacement)

    def test_torn_last_record_cut_at_every_byte(self):
        entries = sample_entries(3)
        full = b"".join(encode_record(entry) for entry in entries)
        last_start = len(full) - len(encode_record(entries[-1]))
        for cut in range(last_start + 1, len(full)):
            with self.subTest(cut=cut):
                with open(os.path.join(self.folder, "log.bin"), "wb") as file:
                    file.write(full[:cut])
                self.lines.clear()
                storage, (_, _, loaded) = self.open_storage()
                # O log aberto lê os comandos do arquivo, então confere antes de fechar.
                self.assertEqual(loaded, entries[:2])
                storage.close()
                self.assertEqual(os.path.getsize(os.path.join(self.folder, "log.bin")),
                                 last_start)
                self.assertTrue(any("incompleto" in text for _, text in self.lines))
                self.assertEqual(self.lines[0][0], logging.WARNING)

    def test_garbage_tail_cut(self):
        entries = sample_entries(2)
        with open(os.path.join(self.folder, "log.bin"), "wb") as file:
            file.write(b"".join(encode_record(entry) for entry in entries) + b"RLOG\x00\x00")
        _, (_, _, loaded) = self.open_storage()
        self.assertEqual(loaded, entries)

    def test_corrupted_middle_record_is_fatal(self):
        entries = sample_entries(4)
        data = bytearray(b"".join(encode_record(entry) for entry in entries))
        position = len(encode_record(entries[0])) + 14
        data[position] ^= 0xFF
        with open(os.path.join(self.folder, "log.bin"), "wb") as file:
            file.write(bytes(data))
        storage = DiskStorage(self.folder, lambda level, text: None)
        with self.assertRaises(StorageError) as caught:
            storage.open()
        storage.close()
        message = str(caught.exception)
        self.assertIn("log.bin", message)
        self.assertIn(f"posição {len(encode_record(entries[0]))}", message)

    def test_corrupted_state_file_is_fatal(self):
        with open(os.path.join(self.folder, "estado.json"), "w") as file:
            file.write("{\"current_term\": ")
        storage = DiskStorage(self.folder, lambda level, text: None)
        with self.assertRaises(StorageError) as caught:
            storage.open()
        storage.close()
        self.assertIn("estado.json", str(caught.exception))

    def test_second_open_of_same_folder_rejected(self):
        self.open_storage()
        other = DiskStorage(self.folder, lambda level, text: None)
        with self.assertRaises(StorageError):
            other.open()
        other.close()


if __name__ == "__main__":
    unittest.main()


class CompactLogTest(unittest.TestCase):
    """O log aberto do disco solta comandos da memória e os relê do arquivo."""

    def setUp(self):
        self.folder = tempfile.mkdtemp(prefix="raft-log-compacto-")
        self.entries = sample_entries(10)
        storage = DiskStorage(self.folder, lambda level, text: None)
        storage.open()
        storage.append(self.entries)
        storage.close()
        self.storage = DiskStorage(self.folder, lambda level, text: None)
        _, _, self.log = self.storage.open()
        self.addCleanup(self.storage.close)

    def test_reopened_log_reads_from_file(self):
        self.assertEqual(len(self.log), 10)
        self.assertEqual(self.log[0], self.entries[0])
        self.assertEqual(self.log[-1], self.entries[-1])
        self.assertEqual(self.log[3:7], self.entries[3:7])
        self.assertEqual(self.log.term(-1), 1)

    def test_released_entries_reread_after_append(self):
        new = LogEntry(term=2, index=11, command={"op": "delete", "key": "k1"})
        self.log.append(new)
        self.storage.append([new])
        self.log.release(11)
        self.assertEqual(self.log[8:11], self.entries[8:] + [new])
        self.assertEqual(self.log.term(10), 2)

    def test_truncate_then_append(self):
        self.log.release(5)
        del self.log[7:]
        self.storage.truncate(8)
        replacement = LogEntry(term=3, index=8, command=None)
        self.log.append(replacement)
        self.storage.append([replacement])
        self.assertEqual(len(self.log), 8)
        self.assertEqual(list(self.log), self.entries[:7] + [replacement])

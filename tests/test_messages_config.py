"""Testes da decodificação estrita de mensagens, dos cabeçalhos HTTP e da
validação das opções."""

import io
import unittest

from raft_distribuido import (BadMessage, ConfigError, HeaderMap, build_config, build_parser,
                              decode_append_entries, decode_request_vote, read_http_headers)


def parse(*argv):
    return build_config(build_parser().parse_args(list(argv)))


class DecodeTest(unittest.TestCase):
    def valid_append(self, **changes):
        data = {"term": 2, "leader_id": "0", "prev_log_index": 1, "prev_log_term": 1,
                "entries": [{"term": 2, "index": 2, "command": None}], "leader_commit": 1}
        data.update(changes)
        return data

    def test_valid_append_entries_decodes(self):
        message = decode_append_entries(self.valid_append())
        self.assertEqual(message.entries[0].index, 2)

    def test_bad_append_entries_rejected(self):
        cases = {
            "termo texto": self.valid_append(term="2"),
            "termo booleano": self.valid_append(term=True),
            "índice negativo": self.valid_append(prev_log_index=-1),
            "índice enorme": self.valid_append(prev_log_index=2**80),
            "entries não é lista": self.valid_append(entries={}),
            "entrada sem termo": self.valid_append(entries=[{"index": 2}]),
            "índice fora de sequência": self.valid_append(
                entries=[{"term": 2, "index": 5, "command": None}]),
            "termo acima do líder": self.valid_append(
                entries=[{"term": 3, "index": 2, "command": None}]),
            "comando não é objeto": self.valid_append(
                entries=[{"term": 2, "index": 2, "command": "x"}]),
            "prev_log_term sem prev": self.valid_append(prev_log_index=0, prev_log_term=1,
                                                        entries=[]),
            "leader_id ausente": {key: value for key, value in self.valid_append().items()
                                  if key != "leader_id"},
            "corpo não é objeto": [1, 2],
        }
        for name, data in cases.items():
            with self.subTest(name):
                with self.assertRaises(BadMessage):
                    decode_append_entries(data)

    def test_bad_request_vote_rejected(self):
        for data in ({"term": 0, "candidate_id": "1", "last_log_index": 0,
                      "last_log_term": 0},
                     {"term": 1, "candidate_id": "", "last_log_index": 0, "last_log_term": 0},
                     {"term": 1, "candidate_id": "1", "last_log_index": 0.5,
                      "last_log_term": 0}):
            with self.subTest(data=data):
                with self.assertRaises(BadMessage):
                    decode_request_vote(data)


class HeaderTest(unittest.TestCase):
    def test_headers_end_at_blank_line(self):
        headers = read_http_headers(io.BytesIO(b"Content-Length: 2\r\nX-A:  b \r\n\r\n{}"))
        self.assertIsInstance(headers, HeaderMap)
        self.assertEqual(headers.get("content-length"), "2")
        self.assertEqual(headers.get("X-a"), "b")

    def test_connection_closed_mid_headers_is_an_error(self):
        # Sem a linha vazia, o pedido está incompleto: tratá-lo como completo
        # atenderia um PUT sem o Content-Length que ainda não tinha chegado.
        for data in (b"Host: x\r\n", b"Host: x\r\nContent-Le", b""):
            with self.subTest(data=data):
                self.assertIsInstance(read_http_headers(io.BytesIO(data)), str)

    def test_repeated_content_length_is_an_error(self):
        data = b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n"
        self.assertIn("Content-Length", read_http_headers(io.BytesIO(data)))


class ConfigTest(unittest.TestCase):
    def test_handout_command_line_accepted(self):
        config = parse("--id", "0", "--host", "127.0.0.1", "--port", "8000", "--peers",
                       "http://127.0.0.1:8001", "http://127.0.0.1:8002")
        self.assertEqual(config.url, "http://127.0.0.1:8000")
        self.assertEqual(config.peers, ["http://127.0.0.1:8001", "http://127.0.0.1:8002"])
        self.assertEqual(config.data_dir, "dados-raft/no-0")

    def test_invalid_settings_name_the_flag(self):
        cases = {
            "--election-timeout-min": ["--election-timeout-min", "100"],
            "--election-timeout-max": ["--election-timeout-max", "300"],
            "--peers": ["--peers", "127.0.0.1:8001"],
            "--heartbeat-interval": ["--heartbeat-interval", "0"],
            "--id": ["--id", "a b"],
        }
        for flag, extra in cases.items():
            with self.subTest(flag):
                argv = ["--id", "0", "--port", "8000"] + extra
                with self.assertRaises(ConfigError) as caught:
                    parse(*argv)
                self.assertIn(flag, str(caught.exception))

    def test_own_address_among_peers_rejected(self):
        for peer in ("http://127.0.0.1:8000", "http://localhost:8000"):
            with self.subTest(peer):
                with self.assertRaises(ConfigError) as caught:
                    parse("--id", "0", "--port", "8000", "--peers", peer)
                self.assertIn("próprio nó", str(caught.exception))

    def test_short_secret_rejected(self):
        with self.assertRaises(ConfigError) as caught:
            parse("--id", "0", "--port", "8000", "--secret", "abc")
        self.assertIn("--secret", str(caught.exception))

    def test_duplicate_peer_rejected(self):
        with self.assertRaises(ConfigError):
            parse("--id", "0", "--port", "8000", "--peers", "http://127.0.0.1:8001",
                  "http://127.0.0.1:8001/")


if __name__ == "__main__":
    unittest.main()

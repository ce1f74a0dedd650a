"""e2e/lab/test_sampling.py — sampling.HolderReader against the real kernel: namespaces
named like the lab's nodes (pgh-<node>) with an eth0 (one end of a veth pair inside the
namespace, as the dummy driver is not everywhere), no traffic sent. As root:
    python3 -m unittest discover -s e2e/lab -p 'test_*.py'
"""
import os
import subprocess
import unittest

from sampling import HolderReader

VIP = "10.251.99.100"
NODES = ["samplt1", "samplt2"]


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


def make_node(n):
    sh("ip", "netns", "add", "pgh-" + n)
    add_dev(n, "eth0")


def add_dev(n, dev):
    sh("ip", "-n", "pgh-" + n, "link", "add", dev, "type", "veth", "peer", "name", "p" + dev)


def del_node(n):
    subprocess.run(["ip", "netns", "del", "pgh-" + n], capture_output=True)


def addr(n, op, cidr, dev="eth0", *extra):
    sh("ip", "-n", "pgh-" + n, "addr", op, cidr, "dev", dev, *extra)


@unittest.skipUnless(os.geteuid() == 0, "needs root (network namespaces)")
class HolderReaderTest(unittest.TestCase):
    def setUp(self):
        for n in NODES:
            del_node(n)
            make_node(n)
        self.addCleanup(lambda: [del_node(n) for n in NODES])
        self.r = HolderReader(NODES)
        self.addCleanup(self.r.close)

    def test_follows_the_address(self):
        self.assertEqual(self.r.holders(VIP), [])
        addr("samplt1", "add", VIP + "/24")
        addr("samplt1", "add", "10.251.99.11/24")
        self.assertEqual(self.r.holders(VIP), ["samplt1"])
        addr("samplt2", "add", VIP + "/32")
        self.assertEqual(self.r.holders(VIP), ["samplt1", "samplt2"])
        addr("samplt1", "del", VIP + "/24")
        self.assertEqual(self.r.holders(VIP), ["samplt2"])
        # Another address, or the VIP on another device, is not holding it.
        self.assertEqual(self.r.holders("10.251.99.12"), [])
        addr("samplt2", "del", VIP + "/32")
        add_dev("samplt2", "eth1")
        addr("samplt2", "add", VIP + "/32", "eth1")
        self.assertEqual(self.r.holders(VIP), [])
        # A labelled address on eth0 is eth0's.
        addr("samplt2", "add", VIP + "/32", "eth0", "label", "eth0:vip")
        self.assertEqual(self.r.holders(VIP), ["samplt2"])

    def test_namespace_gone_and_made_again(self):
        addr("samplt1", "add", VIP + "/32")
        self.assertEqual(self.r.holders(VIP), ["samplt1"])
        del_node("samplt1")
        self.assertEqual(self.r.holders(VIP), [])
        make_node("samplt1")
        self.assertEqual(self.r.holders(VIP), [])
        addr("samplt1", "add", VIP + "/32")
        self.assertEqual(self.r.holders(VIP), ["samplt1"])

    def test_many_addresses_span_several_reads(self):
        # A dump larger than one recv: the VIP last among hundreds of addresses.
        batch = "".join("addr add 10.%d.%d.1/32 dev eth0\n" % (200 + i // 250, i % 250)
                        for i in range(1, 400))
        subprocess.run(["ip", "-n", "pgh-samplt2", "-batch", "-"], input=batch, text=True,
                       check=True, capture_output=True)
        addr("samplt2", "add", VIP + "/32")
        self.assertEqual(self.r.holders(VIP), ["samplt2"])
        self.assertEqual(self.r.holders(VIP), ["samplt2"])  # the socket is left clean


if __name__ == "__main__":
    unittest.main()

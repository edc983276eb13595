package netpol

import "net/netip"

// Subtract returns cidr less every prefix in except, as the fewest prefixes that cover the rest
// (an ipBlock's cidr and except), in address order.
func Subtract(cidr netip.Prefix, except []netip.Prefix) []netip.Prefix {
	cidr = cidr.Masked()
	for _, x := range except {
		x = x.Masked()
		if x.Bits() <= cidr.Bits() && x.Contains(cidr.Addr()) {
			return nil // the whole block is excepted
		}
	}
	var overlapping []netip.Prefix
	for _, x := range except {
		if x = x.Masked(); cidr.Overlaps(x) {
			overlapping = append(overlapping, x)
		}
	}
	if len(overlapping) == 0 {
		return []netip.Prefix{cidr}
	}
	if cidr.Bits() == cidr.Addr().BitLen() {
		return nil // a single address, and an except overlaps it: it contains it
	}
	lo, hi := halves(cidr)
	return append(Subtract(lo, overlapping), Subtract(hi, overlapping)...)
}

// halves splits p into its two prefixes one bit longer.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	bits := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), bits)
	b := p.Addr().As4()
	byteIdx, bit := (bits-1)/8, 7-uint((bits-1)%8)
	b[byteIdx] |= 1 << bit
	hi := netip.PrefixFrom(netip.AddrFrom4(b), bits)
	return lo, hi
}

package apitoken

// checksumIEEE returns the CRC-32 (IEEE) of s, as hash/crc32.ChecksumIEEE
// does.
func checksumIEEE(s string) uint32 { return updateIEEE(0, s) }

// updateIEEE returns the CRC-32 (IEEE) of the bytes whose CRC is crc
// followed by s, as hash/crc32.Update does with its IEEE table, slicing by
// 16 bytes: a secret's 32-byte body is two steps. It is here because the
// refusal of a mistyped secret costs little more than this CRC: hash/crc32
// reaches its slicing-by-8 loop through a sync.Once and two indirect calls,
// which cost a third of that loop on a 41-byte input, and wants a []byte.
// TestChecksumIEEE holds it to hash/crc32.
func updateIEEE(crc uint32, s string) uint32 {
	t := crcTables // a pointer in a register: each table is an offset from it
	crc = ^crc
	i := 0
	for ; i+16 <= len(s); i += 16 {
		q := s[i : i+16]
		crc ^= uint32(q[0]) | uint32(q[1])<<8 | uint32(q[2])<<16 | uint32(q[3])<<24
		crc = t[15][crc&0xff] ^ t[14][crc>>8&0xff] ^ t[13][crc>>16&0xff] ^ t[12][crc>>24] ^
			t[11][q[4]] ^ t[10][q[5]] ^ t[9][q[6]] ^ t[8][q[7]] ^
			t[7][q[8]] ^ t[6][q[9]] ^ t[5][q[10]] ^ t[4][q[11]] ^
			t[3][q[12]] ^ t[2][q[13]] ^ t[1][q[14]] ^ t[0][q[15]]
	}
	for ; i < len(s); i++ {
		crc = t[0][byte(crc)^s[i]] ^ crc>>8
	}
	return ^crc
}

// crcTables are the slicing-by-16 tables of the reflected IEEE polynomial:
// crcTables[0] is the classic byte-at-a-time table, and crcTables[k][b] is
// the CRC of byte b followed by k zero bytes.
var crcTables = func() *[16][256]uint32 {
	t := new([16][256]uint32)
	const poly = 0xedb88320 // IEEE, reflected
	for i := range 256 {
		c := uint32(i)
		for range 8 {
			if c&1 == 1 {
				c = c>>1 ^ poly
			} else {
				c >>= 1
			}
		}
		t[0][i] = c
	}
	for i := range 256 {
		c := t[0][i]
		for k := 1; k < 16; k++ {
			c = t[0][c&0xff] ^ c>>8
			t[k][i] = c
		}
	}
	return t
}()

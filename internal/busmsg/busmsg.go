// Package busmsg is the format of the cache invalidation messages that
// Issuers send each other over an apitoken.Bus: a version, a kind, the
// account id (at most 255 bytes, so its length fits a byte) and, for one
// token, its id. They hold ids, never a secret nor a hash. The root package
// and the buses that write messages themselves (sqlstore's, from its
// revocation log) share it.
package busmsg

// The message's version, and its kinds.
const (
	Version = 1
	Token   = 't' // one token of the account
	Account = 'a' // every token of the account
	All     = '*' // every token of every account (a prune): empty the cache
)

// Encode returns the message that invalidates the account's token with that
// id, every token of the account when id is empty, or every token of every
// account when both are empty. accountID is at most 255 bytes. A reader of
// an earlier version cannot read All, and empties its cache: what All asks.
func Encode(accountID, id string) []byte {
	kind := byte(Token)
	switch {
	case accountID == "":
		kind, id = All, ""
	case id == "":
		kind = Account
	}
	msg := make([]byte, 0, 3+len(accountID)+len(id))
	msg = append(msg, Version, kind, byte(len(accountID)))
	msg = append(msg, accountID...)
	return append(msg, id...)
}

// Decode reads a message; ok is false for one it cannot read. All gives
// an empty account id.
func Decode(msg []byte) (accountID, id string, ok bool) {
	if len(msg) < 3 || msg[0] != Version {
		return "", "", false
	}
	if msg[1] == All {
		return "", "", len(msg) == 3 && msg[2] == 0
	}
	n := int(msg[2])
	if len(msg) < 3+n || n == 0 {
		return "", "", false
	}
	accountID, id = string(msg[3:3+n]), string(msg[3+n:])
	switch msg[1] {
	case Token:
		return accountID, id, id != ""
	case Account:
		return accountID, "", id == ""
	}
	return "", "", false
}

package install

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// scramIterations is PostgreSQL's default scram_iterations.
const scramIterations = 4096

// scramVerifier returns the SCRAM-SHA-256 verifier PostgreSQL stores for
// password (pg_authid.rolpassword). Install sends roles this verifier,
// never the password itself, so no statement text or server log holds it.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return scramVerifierWith(password, salt, scramIterations)
}

func scramVerifierWith(password string, salt []byte, iter int) (string, error) {
	stored, server, err := scramKeys(password, salt, iter)
	if err != nil {
		return "", err
	}
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iter, b64(salt), b64(stored), b64(server)), nil
}

func scramKeys(password string, salt []byte, iter int) (stored, server []byte, err error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		return nil, nil, err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	ck := sha256.Sum256(mac(salted, "Client Key"))
	return ck[:], mac(salted, "Server Key"), nil
}

// passwordMatches reports whether the stored rolpassword of user is
// password's: a SCRAM-SHA-256 verifier or an md5 hash. An empty or
// unreadable one never matches.
func passwordMatches(stored, user, password string) bool {
	switch {
	case strings.HasPrefix(stored, "SCRAM-SHA-256$"):
		// SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>
		rest := strings.TrimPrefix(stored, "SCRAM-SHA-256$")
		params, keys, ok := strings.Cut(rest, "$")
		if !ok {
			return false
		}
		iterS, saltS, ok1 := strings.Cut(params, ":")
		storedS, serverS, ok2 := strings.Cut(keys, ":")
		iter, err := strconv.Atoi(iterS)
		if !ok1 || !ok2 || err != nil || iter < 1 || iter > 10_000_000 {
			return false
		}
		salt, err1 := base64.StdEncoding.DecodeString(saltS)
		want, err2 := base64.StdEncoding.DecodeString(storedS)
		wantServer, err3 := base64.StdEncoding.DecodeString(serverS)
		if err1 != nil || err2 != nil || err3 != nil {
			return false
		}
		st, sv, err := scramKeys(password, salt, iter)
		return err == nil && subtle.ConstantTimeCompare(st, want) == 1 && subtle.ConstantTimeCompare(sv, wantServer) == 1
	case strings.HasPrefix(stored, "md5") && len(stored) == 35:
		h := md5.Sum([]byte(password + user))
		return subtle.ConstantTimeCompare([]byte(stored[3:]), []byte(hex.EncodeToString(h[:]))) == 1
	}
	return false
}

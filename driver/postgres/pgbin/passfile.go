package pgbin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WritePassfile writes password into a libpq password file that matches
// every host, port, database and user: a 0600 file in a fresh 0700
// directory under os.TempDir, both owned by owner (nil: this process's
// account). It returns the file's path and the function that removes the
// directory. The password is escaped as the passfile format wants (\ and :
// behind a backslash); a password with a newline cannot be written.
func WritePassfile(password string, owner *User) (string, func(), error) {
	if strings.ContainsAny(password, "\r\n") {
		return "", func() {}, fmt.Errorf("passfile: the password contains a line break")
	}
	dir, err := os.MkdirTemp("", "themis-pgpass-")
	if err != nil {
		return "", func() {}, fmt.Errorf("passfile: %w", err)
	}
	remove := func() { _ = os.RemoveAll(dir) }
	if err := owner.MkdirOwned(dir, 0o700); err != nil {
		remove()
		return "", func() {}, fmt.Errorf("passfile: %w", err)
	}
	path := filepath.Join(dir, "pgpass")
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(password)
	if err := os.WriteFile(path, []byte("*:*:*:*:"+esc+"\n"), 0o600); err != nil {
		remove()
		return "", func() {}, fmt.Errorf("passfile: %w", err)
	}
	if owner != nil {
		if err := os.Chown(path, int(owner.UID), int(owner.GID)); err != nil {
			remove()
			return "", func() {}, fmt.Errorf("passfile: %w", err)
		}
	}
	return path, remove, nil
}

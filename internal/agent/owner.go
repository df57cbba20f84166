package agent

import (
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// owned says whether a file has the owner and group given.
func owned(st os.FileInfo, uid, gid int) bool {
	s, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(s.Uid) == uid && int(s.Gid) == gid
}

// primaryGroup is a user's primary gid from the user database.
func primaryGroup(uid int) (int, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(u.Gid)
}

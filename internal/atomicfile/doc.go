// Package atomicfile replaces files so that a crash at any moment leaves
// either the old content or the new one, never a mix: the new content goes
// into a temp file in the same directory, which is written, fsynced,
// closed and renamed over the target, and then the directory is fsynced so
// that the rename itself survives a power loss. The temp file is removed on
// every failure path.
//
// Every access goes through an *os.Root: WriteFileIn and CreateIn take the
// caller's, so that a name can never lead outside it through a symlink (a
// user's data dir), and a symlink at the target is replaced, never
// followed. WriteFile and Create open the target's directory as the root.
package atomicfile

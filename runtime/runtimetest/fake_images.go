package runtimetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// ImageID returns the ID of ref among the fake's images, "" when absent.
// References are compared as docker compares them: "alpine/openclaw" is
// "alpine/openclaw:latest" and "docker.io/alpine/openclaw:latest".
func (f *Fake) ImageID(ctx context.Context, ref string) (string, error) {
	if err := f.begin(ctx, "ImageID", runtime.ValidateImage(ref), ""); err != nil {
		return "", fmt.Errorf("image id %q: %w", ref, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.images[normalizeImage(ref)], nil
}

// PullImage adds ref to the fake's images when it is pullable (see
// WithPullable), reporting a few status lines as docker does; any other
// reference is ErrNotFound. A pull that sees its ctx end stops between two
// lines and adds nothing.
func (f *Fake) PullImage(ctx context.Context, ref string, progress func(runtime.PullProgress)) error {
	if err := f.begin(ctx, "PullImage", runtime.ValidateImage(ref), ""); err != nil {
		return fmt.Errorf("pull %q: %w", ref, err)
	}
	norm := normalizeImage(ref)
	f.mu.Lock()
	pullable := f.pullable[norm]
	_, present := f.images[norm]
	f.mu.Unlock()
	if !pullable {
		return fmt.Errorf("pull %q: %w", ref, runtime.Errorf(runtime.ErrNotFound, "manifest for %s not found", norm))
	}
	id := imageID(norm)
	layer := strings.TrimPrefix(id, "sha256:")[:12]
	repo, tag := splitTag(norm)
	lines := []string{
		tag + ": Pulling from " + repo,
		layer + ": Pulling fs layer",
		layer + ": Downloading",
		layer + ": Pull complete",
		"Digest: " + id,
		"Status: Downloaded newer image for " + norm,
	}
	if present {
		lines = []string{tag + ": Pulling from " + repo, "Digest: " + id, "Status: Image is up to date for " + norm}
	}
	for _, l := range lines {
		if err := ctxErr(ctx); err != nil {
			return fmt.Errorf("pull %q: %w", ref, err)
		}
		if progress != nil {
			progress(runtime.PullProgress{Ref: ref, Status: l})
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return fmt.Errorf("pull %q: %w", ref, errDown)
	}
	f.images[norm] = id
	f.emitImage(runtime.EventImagePull, norm, id)
	return nil
}

// AddImage makes refs present, as if built or loaded behind the caller's
// back.
func (f *Fake) AddImage(refs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range refs {
		n := normalizeImage(r)
		f.images[n] = imageID(n)
		f.emitImage(runtime.EventImageTag, n, f.images[n])
	}
}

// RebuildImage points ref at a new image, as `docker build -t ref` does
// behind the caller's back (a tag event), and returns its new ID.
// Containers made from the old image keep it.
func (f *Fake) RebuildImage(ref string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := normalizeImage(ref)
	f.rebuilds++
	sum := sha256.Sum256([]byte(n + "#" + strconv.Itoa(f.rebuilds)))
	id := "sha256:" + hex.EncodeToString(sum[:])
	f.images[n] = id
	f.emitImage(runtime.EventImageTag, n, id)
	return id
}

// RemoveImage removes refs from the fake's images (containers created
// from them keep working, as in docker).
func (f *Fake) RemoveImage(refs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range refs {
		n := normalizeImage(r)
		if id, ok := f.images[n]; ok {
			delete(f.images, n)
			f.emitImage(runtime.EventImageUntag, n, id)
		}
	}
}

// AddPullable makes refs pullable.
func (f *Fake) AddPullable(refs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range refs {
		f.pullable[normalizeImage(r)] = true
	}
}

// normalizeImage spells an image reference the way docker resolves it,
// minus the default registry: a missing tag is "latest".
func normalizeImage(ref string) string {
	for _, p := range []string{"docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"} {
		if strings.HasPrefix(ref, p) {
			ref = strings.TrimPrefix(ref, p)
			break
		}
	}
	if strings.Contains(ref, "@") {
		return ref
	}
	if _, tag := splitTag(ref); tag == "" {
		ref += ":latest"
	}
	return ref
}

// splitTag splits "repo:tag" (the repo may hold a registry port).
func splitTag(ref string) (repo, tag string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}

// imageID makes up a stable image ID for a reference.
func imageID(ref string) string {
	sum := sha256.Sum256([]byte(normalizeImage(ref)))
	return "sha256:" + hex.EncodeToString(sum[:])
}

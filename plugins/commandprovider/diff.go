package main

import (
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// replacePolicy decides whether a change to the top-level key k (from old to
// new; a missing side is a null value) requires replacing the resource.
type replacePolicy func(k resource.PropertyKey, old, new resource.PropertyValue) bool

// computeDiff compares old and new inputs key by key. A key that is absent or
// null on both sides is unchanged; an unknown new value always counts as a change.
func computeDiff(olds, news resource.PropertyMap, replace replacePolicy) *pulumirpc.DiffResponse {
	keys := map[resource.PropertyKey]struct{}{}
	for k := range olds {
		keys[k] = struct{}{}
	}
	for k := range news {
		keys[k] = struct{}{}
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, string(k))
	}
	sort.Strings(sorted)

	resp := &pulumirpc.DiffResponse{
		Changes:             pulumirpc.DiffResponse_DIFF_NONE,
		DetailedDiff:        map[string]*pulumirpc.PropertyDiff{},
		HasDetailedDiff:     true,
		DeleteBeforeReplace: false,
	}
	for _, name := range sorted {
		k := resource.PropertyKey(name)
		oldV, newV := olds[k], news[k]
		hasOld, hasNew := present(oldV), present(newV)
		if !hasOld && !hasNew {
			continue
		}
		if hasOld && hasNew && valuesEqual(oldV, newV) {
			continue
		}

		var kind pulumirpc.PropertyDiff_Kind
		switch {
		case !hasOld:
			kind = pulumirpc.PropertyDiff_ADD
		case !hasNew:
			kind = pulumirpc.PropertyDiff_DELETE
		default:
			kind = pulumirpc.PropertyDiff_UPDATE
		}
		if replace(k, oldV, newV) {
			kind = replaceKind(kind)
			resp.Replaces = append(resp.Replaces, name)
		}
		resp.Diffs = append(resp.Diffs, name)
		resp.DetailedDiff[name] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: true}
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return resp
}

func replaceKind(k pulumirpc.PropertyDiff_Kind) pulumirpc.PropertyDiff_Kind {
	switch k {
	case pulumirpc.PropertyDiff_ADD:
		return pulumirpc.PropertyDiff_ADD_REPLACE
	case pulumirpc.PropertyDiff_DELETE:
		return pulumirpc.PropertyDiff_DELETE_REPLACE
	default:
		return pulumirpc.PropertyDiff_UPDATE_REPLACE
	}
}

// present reports whether a value is set (unknown values count as set).
func present(v resource.PropertyValue) bool {
	v = unwrapSecret(v)
	return !v.IsNull()
}

// valuesEqual compares two property values semantically: secret wrappers are
// ignored (only the underlying values matter), nulls equal missing object
// keys, assets and archives compare by their Hash fields, and any unknown
// value on either side makes the values unequal.
func valuesEqual(a, b resource.PropertyValue) bool {
	a, b = unwrapSecret(a), unwrapSecret(b)
	if isUnknown(a) || isUnknown(b) {
		return false
	}
	switch {
	case a.IsNull():
		return b.IsNull()
	case a.IsBool():
		return b.IsBool() && a.BoolValue() == b.BoolValue()
	case a.IsNumber():
		return b.IsNumber() && a.NumberValue() == b.NumberValue()
	case a.IsString():
		return b.IsString() && a.StringValue() == b.StringValue()
	case a.IsArray():
		if !b.IsArray() || len(a.ArrayValue()) != len(b.ArrayValue()) {
			return false
		}
		for i, e := range a.ArrayValue() {
			if !valuesEqual(e, b.ArrayValue()[i]) {
				return false
			}
		}
		return true
	case a.IsObject():
		if !b.IsObject() {
			return false
		}
		ao, bo := a.ObjectValue(), b.ObjectValue()
		for k, v := range ao {
			if !valuesEqual(v, bo[k]) {
				return false
			}
		}
		for k, v := range bo {
			if _, ok := ao[k]; !ok && present(v) {
				return false
			}
		}
		return true
	case a.IsAsset():
		if !b.IsAsset() {
			return false
		}
		x, y := a.AssetValue(), b.AssetValue()
		if x.Hash != "" || y.Hash != "" {
			return x.Hash == y.Hash
		}
		return x.Text == y.Text && x.Path == y.Path && x.URI == y.URI
	case a.IsArchive():
		if !b.IsArchive() {
			return false
		}
		x, y := a.ArchiveValue(), b.ArchiveValue()
		if x.Hash != "" || y.Hash != "" {
			return x.Hash == y.Hash
		}
		return x.Path != "" && x.Path == y.Path || x.URI != "" && x.URI == y.URI
	case a.IsResourceReference():
		if !b.IsResourceReference() {
			return false
		}
		x, y := a.ResourceReferenceValue(), b.ResourceReferenceValue()
		return x.URN == y.URN && valuesEqual(x.ID, y.ID)
	}
	return false
}

// diffCommand implements Diff for command:remote:Command: changes to triggers
// or to connection.host replace; every other change is an in-place update.
func diffCommand(olds, news resource.PropertyMap) *pulumirpc.DiffResponse {
	olds = withoutKeys(olds, "stdout", "stderr")
	return computeDiff(olds, news, func(k resource.PropertyKey, old, new resource.PropertyValue) bool {
		switch k {
		case "triggers":
			return true
		case "connection":
			return !valuesEqual(connectionHost(old), connectionHost(new))
		}
		return false
	})
}

// diffCopyToRemote implements Diff for command:remote:CopyToRemote: changes
// to source (by hash), remotePath or triggers replace; connection updates.
func diffCopyToRemote(olds, news resource.PropertyMap) *pulumirpc.DiffResponse {
	return computeDiff(olds, news, func(k resource.PropertyKey, _, _ resource.PropertyValue) bool {
		return k == "source" || k == "remotePath" || k == "triggers"
	})
}

// connectionHost returns connection.host, unknown if the connection itself is
// unknown, and null when it is missing.
func connectionHost(conn resource.PropertyValue) resource.PropertyValue {
	conn = unwrapSecret(conn)
	if isUnknown(conn) {
		return resource.MakeComputed(resource.NewStringProperty(""))
	}
	if !conn.IsObject() {
		return resource.NewNullProperty()
	}
	return conn.ObjectValue()["host"]
}

func withoutKeys(m resource.PropertyMap, keys ...resource.PropertyKey) resource.PropertyMap {
	out := m.Copy()
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

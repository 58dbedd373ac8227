#!/usr/bin/env bash
# Regenerates the oneDNN bindings (package dev.isthmus.bindings.onednn) with a `jextract` found on PATH, from the
# C headers inside the org.bytedeco:dnnl natives jar in the local Maven repository (run
# `./mvnw -q install -pl bindings,backend-onednn` once so that Maven has downloaded it).
#
# Only the symbols the oneDNN backend uses are generated (the --include-* lists below), so the output stays
# reviewable; add a symbol here and rerun when the backend needs one more.
#
# The generated header class looks its symbols up with SymbolLookup.libraryLookup("libdnnl.so.3") (-l below): the
# backend loads libgomp.so.1 and libdnnl.so.3 from its extraction directory first, and the dynamic linker then
# resolves that name by SONAME to the library already loaded; before that nothing may touch dnnl_h.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# The natives jar version: the root pom's dnnl.version property, unless DNNL_VERSION is set.
version=${DNNL_VERSION:-$(sed -n 's:.*<dnnl.version>\(.*\)</dnnl.version>.*:\1:p' "$root/pom.xml" | head -1)}
repo=${MAVEN_REPO:-$HOME/.m2/repository}
jar="$repo/org/bytedeco/dnnl/$version/dnnl-$version-linux-x86_64.jar"
out="$here/src/main/java"
pkg=dev.isthmus.bindings.onednn

command -v jextract >/dev/null || { echo "jextract is not on PATH (build it from openjdk/jextract)" >&2; exit 1; }
[ -f "$jar" ] || { echo "no $jar; build backend-onednn once so that Maven downloads it" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if command -v unzip >/dev/null; then
  (cd "$tmp" && unzip -q "$jar" 'org/bytedeco/dnnl/linux-x86_64/include/*')
else
  (cd "$tmp" && jar xf "$jar" org/bytedeco/dnnl/linux-x86_64/include)
fi
inc="$tmp/org/bytedeco/dnnl/linux-x86_64/include"

functions=(
  dnnl_version dnnl_get_effective_cpu_isa dnnl_status2str
  dnnl_engine_create dnnl_engine_destroy dnnl_stream_create dnnl_stream_destroy
  dnnl_memory_desc_create_with_strides dnnl_memory_desc_create_with_tag dnnl_memory_desc_clone
  dnnl_memory_desc_destroy dnnl_memory_desc_equal dnnl_memory_desc_get_size
  dnnl_memory_create dnnl_memory_destroy dnnl_memory_set_data_handle
  dnnl_primitive_attr_create dnnl_primitive_attr_destroy dnnl_primitive_attr_set_fpmath_mode_v2
  dnnl_primitive_attr_set_scales dnnl_primitive_attr_set_post_ops
  dnnl_post_ops_create dnnl_post_ops_destroy dnnl_post_ops_append_binary dnnl_post_ops_append_sum
  dnnl_primitive_desc_query dnnl_primitive_desc_query_md dnnl_primitive_desc_destroy
  dnnl_primitive_create dnnl_primitive_execute dnnl_primitive_destroy
  dnnl_matmul_primitive_desc_create dnnl_reorder_primitive_desc_create dnnl_eltwise_forward_primitive_desc_create
  dnnl_binary_primitive_desc_create dnnl_softmax_forward_primitive_desc_create
  dnnl_layer_normalization_forward_primitive_desc_create_v2
)
constants=(
  dnnl_success dnnl_cpu dnnl_stream_default_flags dnnl_forward_inference
  dnnl_data_type_undef dnnl_f32 dnnl_bf16 dnnl_f16 dnnl_s8 dnnl_s32
  dnnl_format_tag_any dnnl_ba
  dnnl_query_impl_info_str dnnl_query_weights_md
  dnnl_fpmath_mode_bf16
  dnnl_eltwise_swish dnnl_eltwise_gelu_tanh dnnl_binary_add dnnl_binary_mul dnnl_softmax_accurate
  dnnl_use_scale dnnl_use_shift dnnl_rms_norm
  DNNL_ARG_SRC DNNL_ARG_SRC_1 DNNL_ARG_DST DNNL_ARG_WEIGHTS DNNL_ARG_FROM DNNL_ARG_TO DNNL_ARG_SCALE DNNL_ARG_SHIFT
  DNNL_ARG_ATTR_SCALES DNNL_ARG_ATTR_MULTIPLE_POST_OP_BASE
)
typedefs=(dnnl_exec_arg_t dnnl_version_t)

args=()
for f in "${functions[@]}"; do args+=(--include-function "$f"); done
for c in "${constants[@]}"; do args+=(--include-constant "$c"); done
for t in "${typedefs[@]}"; do args+=(--include-typedef "$t"); done

rm -rf "${out:?}/${pkg//.//}"
jextract --output "$out" -t "$pkg" --header-class-name dnnl_h -l :libdnnl.so.3 -I "$inc" "${args[@]}" \
  "$inc/oneapi/dnnl/dnnl.h" "$inc/oneapi/dnnl/dnnl_debug.h"
echo "generated $(find "$out/${pkg//.//}" -name '*.java' | wc -l) files in $out/${pkg//.//} from dnnl $version"

/* One core's fused multiply-add peak, the ceiling the encoder's products are compared with in
 * docs/EVAL.md: twelve independent chains of 256-bit, then 512-bit, FMAs.
 *
 *     gcc -O2 -mavx512f -mfma -o /tmp/fma_peak bench/fma_peak.c && /tmp/fma_peak
 *     gcc -O2 -mavx512f -mavx512bw -mfma -mavx512vnni -mavx512bf16 -o /tmp/fma_peak bench/fma_peak.c
 *
 * Prints FMA instructions per second and f32 multiply-adds per second (GMAC/s). Needs a CPU with
 * AVX-512F (the 512-bit half); on Zen 4 both halves read the same, its 512-bit FMAs being two
 * 256-bit halves. Built with -mavx512vnni -mavx512bf16 as well, it also reads the int8 ceiling
 * (`vpdpbusd`, 64 multiply-adds per instruction, what w8a8's products run) and bf16's
 * (`vdpbf16ps`, 32). */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void){ struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+t.tv_nsec*1e-9; }

/* Seconds for `iters` rounds of STEP on each of twelve independent chains (j = 0..11): enough
 * chains in flight to hide the instruction's latency, so the loop reads its throughput. */
#define CHAINS(iters, STEP) ({ double t0_=now(); \
  for(long i_=0;i_<(iters);i_++){ _Pragma("GCC unroll 12") for(int j=0;j<12;j++) STEP; } now()-t0_; })

int main(){
  long n=400000000;
  __m256 a[12]; __m256 b=_mm256_set1_ps(1.0000001f), c=_mm256_set1_ps(1e-9f);
  for(int i=0;i<12;i++) a[i]=_mm256_set1_ps(i);
  double s=CHAINS(n, a[j]=_mm256_fmadd_ps(a[j],b,c));
  float sum=0; for(int i=0;i<12;i++) sum+=a[i][0];
  printf("ymm FMA/s: %.3g  (GMAC/s %.1f) %f\n", n*12/s, n*12*8/s/1e9, sum);
  __m512 z[12]; __m512 zb=_mm512_set1_ps(1.0000001f), zc=_mm512_set1_ps(1e-9f);
  for(int i=0;i<12;i++) z[i]=_mm512_set1_ps(i);
  s=CHAINS(n/2, z[j]=_mm512_fmadd_ps(z[j],zb,zc));
  sum=0; for(int i=0;i<12;i++) sum+=z[i][0];
  printf("zmm FMA/s: %.3g  (GMAC/s %.1f) %f\n", n/2*12/s, n/2*12*16/s/1e9, sum);
#if defined(__AVX512VNNI__) && defined(__AVX512BF16__)
  __m512i acc[12]; __m512i ua=_mm512_set1_epi8(3), sb=_mm512_set1_epi8(5);
  for(int i=0;i<12;i++) acc[i]=_mm512_set1_epi32(i);
  s=CHAINS(n/2, acc[j]=_mm512_dpbusd_epi32(acc[j],ua,sb));
  unsigned isum=0; for(int i=0;i<12;i++) isum+=(unsigned)_mm512_reduce_add_epi32(acc[i]);
  printf("zmm vpdpbusd/s: %.3g  (int8 GMAC/s %.1f) %u\n", n/2*12/s, n/2*12*64/s/1e9, isum);
  __m512bh one=(__m512bh)_mm512_set1_epi16(0x3f80);
  for(int i=0;i<12;i++) z[i]=_mm512_set1_ps(i);
  s=CHAINS(n/2, z[j]=_mm512_dpbf16_ps(z[j],one,one));
  sum=0; for(int i=0;i<12;i++) sum+=z[i][0];
  printf("zmm vdpbf16ps/s: %.3g  (bf16 GMAC/s %.1f) %f\n", n/2*12/s, n/2*12*32/s/1e9, sum);
#endif
}

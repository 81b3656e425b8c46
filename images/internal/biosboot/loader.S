# Stage-1 BIOS boot loader for Lambgate PC images, written to the first 432
# bytes of the MBR. It loads vmlinuz, which must be contiguous on disk, by
# the Linux x86 boot protocol: the real mode setup to 0x90000, the
# protected mode kernel to 1 MiB, and the first sector of cmdline.txt as
# the command line. It needs BIOS disk reads by LBA (INT 13h AH=42h) and
# the block move to high memory (INT 15h AH=87h). gokrazy's runtime rewrites
# cmdline.txt in place to switch root partitions, so the loader needs no
# change when the root switches.
#
# "make loader.bin" in this directory runs:
#   as --32 -o loader.o loader.S
#   ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o loader.bin loader.o

	.code16
	.text
	.globl _start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %ss
	movw	$0x7c00, %sp
	sti
	movb	%dl, drive

	# Real mode setup: the boot sector and up to 63 setup sectors.
	movw	$64, dap_count
	movw	$0x9000, dap_seg
	movl	vmlinuz_lba, %eax
	movl	%eax, dap_lba
	call	read

	# The command line: one sector at 0x9e000, between the setup heap's end
	# and 0xa0000 as the protocol asks, cut at its first newline.
	movw	$1, dap_count
	movw	$0x9e00, dap_seg
	movl	cmdline_lba, %eax
	movl	%eax, dap_lba
	call	read
	pushw	%ds
	movw	$0x9e00, %ax
	movw	%ax, %ds
	xorw	%si, %si
1:	lodsb
	cmpb	$0x0a, %al
	je	2f
	cmpw	$511, %si
	jb	1b
2:	movb	$0, -1(%si)
	popw	%ds

	# Protected mode kernel: syssize paragraphs after 1 + setup_sects
	# sectors, copied to 1 MiB in 32 KiB steps through a low buffer.
	movw	$0x9000, %ax
	movw	%ax, %es
	movzbl	%es:0x1f1, %eax
	testb	%al, %al
	jnz	3f
	movb	$4, %al
3:	incl	%eax
	addl	vmlinuz_lba, %eax
	movl	%eax, dap_lba
	movl	%es:0x1f4, %ecx
	addl	$31, %ecx
	shrl	$5, %ecx
	movb	$0x10, dst_base_hi
	movw	$0x2000, dap_seg
4:	movw	$64, dap_count
	pushl	%ecx
	call	read
	# Copy 32 KiB (16384 words) from 0x20000 to the destination.
	pushw	%ds
	popw	%es
	movw	$gdt, %si
	movw	$16384, %cx
	movb	$0x87, %ah
	int	$0x15
	jc	fail
	popl	%ecx
	addl	$64, dap_lba
	addw	$0x8000, dst_base_lo
	adcb	$0, dst_base_hi
	adcb	$0, dst_base_top
	subl	$64, %ecx
	ja	4b

	# Header fields for a boot loader with a heap and a command line.
	movw	$0x9000, %ax
	movw	%ax, %es
	movb	$0xff, %es:0x210
	orb	$0x80, %es:0x211
	movw	$0xde00, %es:0x224
	movl	$0x9e000, %es:0x228

	cli
	movw	%ax, %ds
	movw	%ax, %fs
	movw	%ax, %gs
	movw	%ax, %ss
	movw	$0xe000, %sp
	ljmp	$0x9020, $0

# read loads dap_count sectors from dap_lba to dap_seg:0.
read:
	movw	$dap, %si
	movb	drive, %dl
	movb	$0x42, %ah
	int	$0x13
	jc	fail
	ret

fail:
	movw	$msg, %si
5:	lodsb
	testb	%al, %al
	jz	6f
	movb	$0x0e, %ah
	int	$0x10
	jmp	5b
6:	hlt
	jmp	6b

msg:	.asciz	"lambgate: boot read failed"

drive:	.byte	0
	.balign	4
dap:	.byte	0x10, 0
dap_count:
	.word	0
	.word	0
dap_seg:
	.word	0
dap_lba:
	.long	0, 0

# Descriptor table for INT 15h AH=87h: two null entries, source, destination,
# two null entries for the BIOS.
gdt:	.quad	0, 0
	.word	0xffff, 0x0000
	.byte	0x02, 0x93, 0, 0
	.word	0xffff
dst_base_lo:
	.word	0x0000
dst_base_hi:
	.byte	0x10
	.byte	0x93, 0
dst_base_top:
	.byte	0
	.quad	0, 0

	.org	432
vmlinuz_lba:
	.long	0
cmdline_lba:
	.long	0

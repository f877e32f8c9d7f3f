# mknpy.sh — sourced by tests, the demo and the fuzz seeds: writes .npy files
# without numpy (perl is part of every Debian system).

# mknpy DESCR SHAPE DATAFILE OUT: a .npy (version 1.0) laid out exactly as
# numpy.save writes it, around the raw bytes in DATAFILE.
mknpy() {
    perl -e '
        my ($descr, $shape, $data, $out) = @ARGV;
        my $dict = "{'"'"'descr'"'"': '"'"'$descr'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': $shape, }";
        my $len = length($dict) + 1; my $pad = (64 - (10 + $len) % 64) % 64;
        open(my $d, "<:raw", $data) or die; local $/; my $bytes = <$d>;
        open(my $o, ">:raw", $out) or die;
        print $o "\x93NUMPY\x01\x00", pack("v", $len + $pad), $dict, " " x $pad, "\n", $bytes;
    ' "$@"
}

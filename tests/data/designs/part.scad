// a 20 x 10 x 5 mm block with a 4 mm hole: simple, closed, known volume-ish
difference() {
  cube([20, 10, 5]);
  translate([10, 5, -1]) cylinder(h = 7, r = 2, $fn = 24);
}
